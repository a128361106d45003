//! `citypulse demo --once` as a newcomer runs it (on its own ports and folder): every sample post
//! is stored exactly once, the posts per day equal the sample's, and the scripted flood raises
//! the flood alert for its district, delivered to the demo's own receiver.

mod common;

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn free_port() -> u16 {
    // The demo uses this port for HTTP and the next for ClickHouse's native protocol.
    loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if p < 65000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

#[test]
fn demo_once_stores_the_sample_once_and_raises_the_flood_alert() {
    if common::service_env("CITYPULSE_TEST_CLICKHOUSE_URL").is_none() {
        return; // make test installs clickhouse-server; the demo starts its own.
    }
    if std::env::var_os("ORT_DYLIB_PATH").is_none() && std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none() {
        eprintln!("skipped: the demo needs the model (make test fetches it)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(common::unique_name("demo"));
    let config = dir.join("config");
    common::copy_config_into(&config);
    let demo = format!(
        "replay_file = \"{}\"\nclickhouse_http_port = {}\nwork_dir = \"{}\"\nalerts_file = \"{}\"\nserve_port = {}\n",
        root.join("config/demo/posts.jsonl").display(),
        free_port(),
        dir.join("work").display(),
        root.join("config/demo/alerts.toml").display(),
        free_port()
    );
    std::fs::write(config.join("demo.toml"), demo).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(["--config", config.to_str().unwrap(), "demo", "--once"])
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let sample: Vec<serde_json::Value> = std::fs::read_to_string(root.join("config/demo/posts.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = sample.len();
    assert!(stdout.contains(&format!("Stored: {n} posts, {n} distinct keys")), "every post once: {stdout}");

    // Posts per local day, from the sample moved as the demo says it moved it.
    let shift: i64 = stdout
        .split("times moved by ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("the shift");
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    for p in &sample {
        let t: DateTime<Utc> = p["created_at"].as_str().unwrap().parse().unwrap();
        let day = (t + chrono::Duration::seconds(shift)).with_timezone(&tz).format("%Y-%m-%d").to_string();
        *per_day.entry(day).or_default() += 1;
    }
    let expected: Vec<String> = per_day.iter().map(|(d, c)| format!("{d} {c}")).collect();
    assert!(stdout.contains(&format!("Posts per day: {}", expected.join(", "))), "per day {expected:?}: {stdout}");

    let fired: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("fired ")).collect();
    assert!(
        fired.iter().any(|l| l.contains("watch_terms") || l.contains("terms"))
            && fired.iter().any(|l| l.contains("place=district_7")),
        "the flood alert for District 7: {stdout}"
    );
    assert!(stdout.contains("demo receiver: alert.fired"), "delivered to the in-demo receiver: {stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
