//! `citypulse alert --once` and `citypulse alert history` as an operator runs them, on the shipped
//! rules (config/alerts.toml, the webhook pointed at a receiver on 127.0.0.1) against the test
//! ClickHouse: the JSON events, a delivery, nothing twice, the history table, clear errors.

mod common;

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Router};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

fn citypulse(config: &Path, url: &str, db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("CITYPULSE__CLICKHOUSE__URL", url)
        .env("CITYPULSE__CLICKHOUSE__DATABASE", db)
        .output()
        .expect("run citypulse");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The shipped configuration with the webhook pointed at `hook`.
fn config_with_hook(hook: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name("alert_cli_config"));
    common::copy_config_into(&dir);
    let alerts = std::fs::read_to_string(dir.join("alerts.toml")).unwrap();
    let shipped = "http://127.0.0.1:8099/citypulse-alerts";
    assert!(alerts.contains(shipped));
    std::fs::write(dir.join("alerts.toml"), alerts.replace(shipped, hook)).unwrap();
    dir
}

/// 60 flooding posts in District 7 in the hour before 2026-12-01 10:00 (city time), 4 in 5
/// negative, all saying "ngập".
fn flood() -> Vec<schema::AnalyzedPost> {
    let end = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00+07:00").unwrap().to_utc();
    (0..60)
        .map(|i| {
            let at = end - chrono::Duration::seconds(3600 - i * 60);
            let (negative, neutral) = if i % 5 == 4 { (0.1, 0.8) } else { (0.8, 0.1) };
            let p = schema::SentimentProbabilities { negative, neutral, positive: 0.1 };
            schema::AnalyzedPost {
                id: format!("flood-{i}"),
                source: schema::SourceId::new("mastodon_social").unwrap(),
                url: Some(format!("https://mastodon.social/@x/{i}")),
                author: "a".repeat(32),
                lang_declared: Some("vi".into()),
                created_at: at,
                fetched_at: at,
                places: vec![schema::PlaceId::new("district_7").unwrap()],
                engagement: Default::default(),
                created_at_estimated: false,
                text_redacted: format!("Đường Nguyễn Hữu Thọ ngập sâu, bài {i}"),
                lang: schema::Lang::Vi,
                sentiment: schema::Sentiment::from_probabilities(p),
                topics: vec![schema::TopicScore { id: schema::TopicId::new("flooding").unwrap(), score: 0.8 }],
                model: schema::ModelInfo { id: "multilingual-e5-small".into(), version: "v1".into() },
                analyzed_at: at,
                embedding: None,
                search: None,
            }
        })
        .collect()
}

type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

async fn hook(State(seen): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
    let event = headers.get("x-citypulse-event").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    seen.lock().unwrap().push((event, serde_json::from_slice(&body).unwrap_or_default()));
    "ok"
}

#[test]
fn once_history_and_errors_as_an_operator_sees_them() {
    let Some(url) = common::clickhouse_url() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = Received::default();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route("/hook", post(hook)).with_state(seen.clone());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = config_with_hook(&hook_url);
    let db = common::unique_name("alert_cli");
    let (ok, _, err) = citypulse(&config, &url, &db, &["migrate"]);
    assert!(ok, "{err}");
    rt.block_on(async {
        // As store::client makes it: 18.16 has no RowBinaryWithNamesAndTypes.
        let client = clickhouse::Client::default().with_url(&url).with_validation(false);
        let writer = store::Writer::new(client, store::Database::new(&db).unwrap(), Default::default());
        let report = writer.write(flood(), &Default::default()).await.unwrap();
        assert_eq!(report.inserted, 60, "{:?}", report.rejected.first());
    });

    let at = ["--at", "2026-12-01T10:00:30+07:00"];
    let (ok, out, err) =
        citypulse(&config, &url, &db, &[&["alert", "--once", "--dry-run", "--format", "json"], &at[..]].concat());
    assert!(ok, "{err}");
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut rules: Vec<&str> = events.iter().map(|e| e["rule"].as_str().unwrap()).collect();
    rules.sort();
    // No history yet: negative_share judges by threshold and min_posts alone, watch_terms needs
    // none; volume and net-sentiment rules cannot judge (logged as insufficient history).
    assert_eq!(rules, ["flooding_negative_share", "flooding_terms"], "{out}{err}");
    let e = &events[0];
    assert_eq!(
        (e["version"].as_i64(), e["event"].as_str(), e["state"].as_str()),
        (Some(1), Some("fired"), Some("firing"))
    );
    assert_eq!(e["window"]["end"], "2026-12-01T10:00:00+07:00");
    assert!(e["dashboard_url"].is_null() && e["resolved_at"].is_null());
    assert!(!e["evidence"].as_array().unwrap().is_empty());
    assert!(seen.lock().unwrap().is_empty(), "a dry run sends nothing");

    let (ok, out, err) = citypulse(&config, &url, &db, &[&["alert", "--once", "--format", "json"], &at[..]].concat());
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "only flooding_negative_share notifies the webhook: {received:?}");
    assert_eq!(
        (received[0].0.as_str(), received[0].1["rule"].as_str()),
        ("alert.fired", Some("flooding_negative_share"))
    );

    let (ok, out, err) = citypulse(&config, &url, &db, &[&["alert", "--once", "--format", "json"], &at[..]].concat());
    assert!(ok && out.is_empty(), "nothing twice: {out}{err}");

    let (ok, out, err) = citypulse(&config, &url, &db, &["alert", "history", "--since", "2026-11-30"]);
    assert!(ok, "{err}");
    assert!(out.contains("flooding_negative_share") && out.contains("firing") && out.contains("delivered"), "{out}");
    let (ok, out, _) =
        citypulse(&config, &url, &db, &["alert", "history", "--since", "2026-11-30", "--state", "resolved"]);
    assert!(ok && out.contains("no alerts"), "{out}");

    // Replayed over the stored history, the rules find the same incident; nothing is written.
    let (ok, out, err) = citypulse(
        &config,
        &url,
        &db,
        &[
            "alert",
            "backtest",
            "--since",
            "2026-12-01T08:00:00+07:00",
            "--until",
            "2026-12-01T10:00:00+07:00",
            "--step",
            "30m",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("flooding_negative_share         1 pages")
            && out.contains("volume_spike                    0 pages"),
        "{out}"
    );

    let (ok, out, err) = citypulse(&config, &url, &db, &["alert", "test-notify", "comms_webhook"]);
    assert!(ok && out.contains("test notification through comms_webhook: delivered"), "{out}{err}");
    let test = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((test.1["rule"].as_str(), test.1["kind"].as_str()), (Some("test-notification"), Some("test")));
    let (ok, _, err) = citypulse(&config, &url, &db, &["alert", "test-notify", "pager"]);
    assert!(!ok && err.contains("no notifier \"pager\""), "{err}");

    let (ok, _, err) = citypulse(&config, &url, &db, &["alert", "--once", "--at", "last tuesday"]);
    assert!(!ok && err.contains("\"last tuesday\" is neither a duration"), "{err}");
    let (ok, _, err) = citypulse(&config, &url, &db, &["alert", "--dry-run"]);
    assert!(!ok && err.contains("--once"), "{err}");
    rt.block_on(async {
        let client = clickhouse::Client::default().with_url(&url);
        client.query(&format!("DROP DATABASE IF EXISTS {db}")).execute().await.unwrap();
    });
    let _ = std::fs::remove_dir_all(config);
}
