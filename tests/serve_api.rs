//! `citypulse serve` as a client sees it: the binary on 127.0.0.1 against the test ClickHouse
//! holding scripted posts. The API answers with the stored numbers (trends, paged posts with
//! `q`, the daily summary), bad input is a 400 naming the parameter and never a 500, tokens close
//! `/api/v1` (and only it), and `/openapi.json` passes openapi-spec-validator.

mod common;

use common::serve::{get, scripted, Server, TOKEN};
use std::process::Command;

#[test]
fn the_api_answers_with_the_stored_numbers_and_names_bad_parameters() {
    let Some(url) = common::clickhouse_url() else { return };
    let server = Server::start(&url, scripted(), false);
    let api = |path: &str| get(&server.base, path, None);

    let (status, trends) = api("/api/v1/trends?since=2026-11-29&until=2026-12-01&by=topic&granularity=day");
    assert_eq!(status, 200, "{trends}");
    let rows = trends["rows"].as_array().unwrap();
    let row = |day: &str, key: &str| {
        rows.iter().find(|r| r["key"] == key && r["bucket"].as_str().unwrap().starts_with(day)).cloned()
    };
    let flood = row("2026-11-30", "flooding").unwrap();
    assert_eq!(
        (flood["posts"].as_i64(), flood["negative"].as_i64(), flood["positive"].as_i64()),
        (Some(10), Some(7), Some(3))
    );
    assert_eq!(flood["bucket"], "2026-11-30T00:00:00+07:00");
    assert_eq!(row("2026-11-29", "flooding").unwrap()["posts"], 2);
    assert_eq!(row("2026-11-30", "traffic").unwrap()["posts"], 5);

    // q as watch_terms match: "ngập" in five accented posts and "ngap" in the unaccented one.
    let mut keys = Vec::new();
    let mut path = "/api/v1/posts?since=2026-11-29&until=2026-12-01&topic=flooding&q=ng%E1%BA%ADp&limit=4".to_owned();
    for _ in 0..5 {
        let (status, page) = api(&path);
        assert_eq!(status, 200, "{page}");
        keys.extend(page["posts"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => {
                path = format!(
                    "/api/v1/posts?since=2026-11-29&until=2026-12-01&topic=flooding&q=ng%E1%BA%ADp&limit=4&cursor={c}"
                )
            }
            None => break,
        }
    }
    let want: Vec<String> = (0..6).rev().map(|i| format!("mastodon_social:f{i}")).collect();
    assert_eq!(keys, want, "newest first, each once across pages");
    let (_, one) = api("/api/v1/posts?since=2026-11-30&until=2026-12-01&topic=traffic&limit=1");
    assert_eq!(one["posts"][0]["created_at"], "2026-11-30T17:04:00+07:00");
    assert!(one["next_cursor"].is_string());

    let (status, summary) = api("/api/v1/summary?date=2026-11-30");
    assert_eq!(status, 200, "{summary}");
    let topic = |id: &str| summary["topics"].as_array().unwrap().iter().find(|t| t["topic"] == id).unwrap().clone();
    let flooding = topic("flooding");
    assert_eq!((flooding["posts"].as_i64(), flooding["negative"].as_i64()), (Some(10), Some(7)));
    assert_eq!(flooding["vs_previous_day"]["posts"].as_f64(), Some(8.0));
    assert!((flooding["net_sentiment"].as_f64().unwrap() - (-0.4)).abs() < 1e-9);
    assert_eq!(flooding["examples"].as_array().unwrap().len(), 3);
    assert_eq!(
        flooding["daily_posts"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .take(2)
            .map(|v| v.as_i64().unwrap())
            .collect::<Vec<_>>(),
        [10, 2]
    );
    assert_eq!(topic("traffic")["posts"], 5);
    assert_eq!(summary["places_moved"][0]["place"], "district_7");

    let (_, topics) = api("/api/v1/topics");
    assert!(topics["topics"].as_array().unwrap().iter().any(|t| t["id"] == "flooding" && t["label_vi"].is_string()));
    let (_, places) = api("/api/v1/places");
    let d1 = places["places"].as_array().unwrap().iter().find(|p| p["id"] == "district_1").unwrap().clone();
    assert_eq!((d1["label_vi"].as_str(), d1["label_en"].as_str()), (Some("Quận 1"), Some("District 1")));

    for (path, code, param) in [
        ("/api/v1/trends?sinse=7d", "unknown_parameter", "sinse"),
        ("/api/v1/trends?since=last%20week", "invalid_parameter", "since"),
        ("/api/v1/trends?since=2026-11-30&until=2026-11-29", "invalid_parameter", "until"),
        ("/api/v1/trends?since=1000d", "range_too_large", "since"),
        ("/api/v1/trends?by=colour", "invalid_parameter", "by"),
        ("/api/v1/trends?since=90d&granularity=hour", "invalid_parameter", "granularity"),
        ("/api/v1/trends?topic=floods", "invalid_parameter", "topic"),
        ("/api/v1/posts?limit=5000", "invalid_parameter", "limit"),
        ("/api/v1/posts?cursor=nonsense", "invalid_parameter", "cursor"),
        ("/api/v1/posts?place=quan_99", "invalid_parameter", "place"),
        ("/api/v1/summary?date=30/11/2026", "invalid_parameter", "date"),
        ("/api/v1/alerts?state=burning", "invalid_parameter", "state"),
    ] {
        let (status, body) = api(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            (body["error"]["code"].as_str(), body["error"]["param"].as_str()),
            (Some(code), Some(param)),
            "{path}: {body}"
        );
    }
    let (status, body) = api("/api/v1/posts?q=%27%3B%20DROP%20TABLE%20posts%3B--&since=2026-11-29");
    assert_eq!((status, body["posts"].as_array().map(Vec::len)), (200, Some(0)), "a hostile q is just text: {body}");
    drop_db(&server);
}

#[test]
fn tokens_close_the_api_and_only_the_api_and_the_spec_validates() {
    let Some(url) = common::clickhouse_url() else { return };
    let server = Server::start(&url, scripted(), true);
    assert_eq!(get(&server.base, "/api/v1/topics", None).0, 401);
    let (status, body) = get(&server.base, "/api/v1/topics", Some("wrong"));
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(get(&server.base, "/api/v1/topics", Some(TOKEN)).0, 200);
    assert_eq!(get(&server.base, "/healthz", None).0, 200);
    // Emerging issues: a day with no report says so and how to get one; proposing a topic needs
    // the analyst role (a 404 for a day with no report), and this token is a viewer's.
    let (status, body) = get(&server.base, "/api/v1/emerging?date=2026-11-30", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["date"].as_str(), body["report"].is_null()), (Some("2026-11-30"), true), "{body}");
    assert!(body["message"].as_str().unwrap().contains("citypulse emerging --date 2026-11-30"), "{body}");
    let (status, body) = get(&server.base, "/api/v1/emerging?date=30/11/2026", Some(TOKEN));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("date")), "{body}");
    let propose = |token: Option<&str>| {
        let mut request = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/emerging/proposals", server.base))
            .json(&serde_json::json!({"date": "2026-11-30", "rank": 1}));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().unwrap();
        (response.status().as_u16(), response.json::<serde_json::Value>().unwrap_or_default())
    };
    assert_eq!(propose(None).0, 401);
    let (status, body) = propose(Some(TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(!server.config_dir().join("proposals").exists(), "nothing written");
    let page = reqwest::blocking::get(format!("{}/", server.base)).unwrap();
    assert_eq!(page.status().as_u16(), 200, "the page is open and holds no data");

    let (status, spec) = get(&server.base, "/openapi.json", None);
    assert_eq!(status, 200);
    for path in [
        "/api/v1/trends",
        "/api/v1/posts",
        "/api/v1/summary",
        "/api/v1/alerts",
        "/api/v1/topics",
        "/api/v1/places",
        "/api/v1/emerging",
        "/api/v1/searches",
        "/api/v1/searches/{name}/trends",
        "/api/v1/searches/{name}/posts",
    ] {
        assert!(spec["paths"][path]["get"].is_object(), "{path} missing from the spec");
    }
    match common::service_env("CITYPULSE_OPENAPI_VALIDATOR") {
        Some(python) => {
            let file = std::env::temp_dir().join(common::unique_name("openapi")).with_extension("json");
            std::fs::write(&file, spec.to_string()).unwrap();
            let out = Command::new(python).args(["-m", "openapi_spec_validator"]).arg(&file).output().unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && text.contains("OK"), "{text}");
            let _ = std::fs::remove_file(file);
        }
        None => eprintln!("skipped: openapi-spec-validator (scripts/test-tools.sh)"),
    }
    drop_db(&server);
}

fn drop_db(server: &Server) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = clickhouse::Client::default().with_url(&server.url);
        client.query(&format!("DROP DATABASE IF EXISTS {}", server.db)).execute().await.unwrap();
    });
}
