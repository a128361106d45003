//! The deployment's topology as separate processes (scripts/topology.sh, as docker-compose.yml
//! runs it): ingest, two analyze replicas, store, alert and serve, each its own process against
//! the test tansu broker and ClickHouse. Every replayed post is stored once, every process is
//! healthy, the API answers with the stored numbers, and all stop cleanly.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const POSTS: usize = 120;

fn replay_file(path: &Path, run: &str) {
    let now = chrono::Utc::now();
    let texts = [
        "Đường Nguyễn Hữu Cảnh ngập sâu sau mưa",
        "Kẹt xe ở Quận 1 giờ tan tầm",
        "Metro số 1 chạy êm quá",
        "ket xe qua troi o Binh Thanh",
    ];
    let mut out = String::new();
    for i in 0..POSTS {
        let at = now - chrono::Duration::minutes(5 + i as i64);
        let post = schema::Post {
            id: format!("{run}-{i}"),
            source: schema::SourceId::new("replay_topology").unwrap(),
            url: None,
            author: format!("{:032x}", i % 17),
            text: format!("{} ({i})", texts[i % texts.len()]),
            lang: Some("vi".into()),
            created_at: at,
            fetched_at: at,
            places: vec![],
            engagement: Default::default(),
            created_at_estimated: false,
        };
        out.push_str(std::str::from_utf8(&schema::encode(&post)).unwrap());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn topology(action: &str, env: &[(String, String)]) -> (bool, String) {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/topology.sh"))
        .arg(action)
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_stage_as_its_own_process_stores_each_post_once() {
    let (Some(ch), Some(brokers)) = (common::clickhouse_url(), common::kafka_brokers()) else { return };
    if std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none() && std::env::var_os("ORT_DYLIB_PATH").is_none() {
        eprintln!("skipped: analyze needs the model (make test fetches it)");
        return;
    }
    let name = common::unique_name("topology");
    let dir = std::env::temp_dir().join(&name);
    let config = dir.join("config");
    common::copy_config_into(&config);
    let replay = dir.join("posts.jsonl");
    replay_file(&replay, &name);
    std::fs::write(
        config.join("sources.toml"),
        format!("[[replay]]\nname = \"replay_topology\"\npath = {:?}\n", replay.display().to_string()),
    )
    .unwrap();
    // The webhook of the shipped rules points at 127.0.0.1:8099; here nothing should fire anyway.
    let port = loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if p < 65000 && (1..6).all(|k| std::net::TcpListener::bind(("127.0.0.1", p + k)).is_ok()) {
            break p;
        }
    };
    let env: Vec<(String, String)> = [
        ("CITYPULSE_BIN", env!("CARGO_BIN_EXE_citypulse").to_owned()),
        ("CITYPULSE_CONFIG", config.display().to_string()),
        ("CITYPULSE_TOPOLOGY_DIR", dir.join("run").display().to_string()),
        ("CITYPULSE_TOPOLOGY_PORT", port.to_string()),
        ("CITYPULSE_AUTHOR_KEY", "topology-test-key-not-secret-0123456789".to_owned()),
        ("CITYPULSE__KAFKA__BROKERS", brokers),
        ("CITYPULSE__KAFKA__TOPIC_RAW", format!("{name}.raw")),
        ("CITYPULSE__KAFKA__TOPIC_ANALYZED", format!("{name}.analyzed")),
        ("CITYPULSE__KAFKA__TOPIC_DLQ", format!("{name}.dlq")),
        ("CITYPULSE__KAFKA__ANALYZE_GROUP", format!("{name}-analyze")),
        ("CITYPULSE__KAFKA__STORE_GROUP", format!("{name}-store")),
        ("CITYPULSE__CLICKHOUSE__URL", ch.clone()),
        ("CITYPULSE__CLICKHOUSE__DATABASE", name.clone()),
        ("CITYPULSE__INGEST__STATE_DIR", dir.join("state").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let (ok, out) = topology("start", &env);
    if !ok {
        let _ = topology("stop", &env);
        panic!("{out}");
    }
    assert_eq!(out.matches(": healthy on").count(), 6, "{out}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = clickhouse::Client::default().with_url(&ch).with_validation(false);
    let deadline = Instant::now() + Duration::from_secs(240);
    let (stored, keys) = loop {
        let counts: (u64, u64) = rt
            .block_on(
                client
                    .query(&format!("SELECT count(), uniqExact(key) FROM {name}.posts FINAL WHERE sign = 1"))
                    .fetch_one(),
            )
            .unwrap_or((0, 0));
        if counts.0 >= POSTS as u64 || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // The API reads the trend cube, which the same INSERT writes right after the posts (a view):
    // a poll can fall between the two, so it is asked until it agrees or 10 s have passed.
    let url = format!("http://127.0.0.1:{}/api/v1/trends?since=1d&by=source&granularity=day", port + 5);
    let api_total = || -> Option<i64> {
        let body = reqwest::blocking::get(&url).and_then(|r| r.json::<serde_json::Value>()).ok()?;
        Some(body["rows"].as_array()?.iter().filter_map(|r| r["posts"].as_i64()).sum())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let total = loop {
        let total = api_total();
        if total == Some(POSTS as i64) || Instant::now() > deadline {
            break total;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (ok, stop_out) = topology("stop", &env);
    assert_eq!((stored, keys), (POSTS as u64, POSTS as u64), "each post stored once");
    assert_eq!(total, Some(POSTS as i64), "the API counts what was stored");
    // Ingest replays a file: it ends with it. The others drain and exit on SIGTERM.
    assert!(
        ok && stop_out.matches(": stopped").count() == 5 && stop_out.contains("ingest: had already exited"),
        "{stop_out}"
    );
    rt.block_on(client.query(&format!("DROP DATABASE IF EXISTS {name}")).execute()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
