//! `citypulse migrate`, `trends` and `trends top-posts` against the test ClickHouse server: the
//! commands apply the migrations (idempotently) and answer with the documented formats.

mod common;

use std::process::Command;

fn citypulse(url: &str, db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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

#[test]
fn migrate_then_query_trends() {
    let Some(url) = common::clickhouse_url() else { return };
    let db = common::unique_name("cli");
    let (ok, first, err) = citypulse(&url, &db, &["migrate"]);
    assert!(ok, "{err}");
    assert!(first.contains("migrations applied: [1, 2, 3]"), "{first}");
    let (ok, again, err) = citypulse(&url, &db, &["migrate"]);
    assert!(ok, "{err}");
    assert!(again.contains("migrations applied: []") && again.contains("already applied: [1, 2, 3]"), "{again}");

    let (ok, table, err) = citypulse(&url, &db, &["trends", "--since", "7d", "--by", "topic"]);
    assert!(ok, "{err}");
    assert!(table.contains("bucket") && table.contains("no posts"), "{table}");
    let (ok, csv, err) =
        citypulse(&url, &db, &["trends", "--since", "2026-11-01", "--format", "csv", "--granularity", "hour"]);
    assert!(ok, "{err}");
    assert!(csv.starts_with("bucket,key,posts"), "{csv}");
    let (ok, _, err) = citypulse(&url, &db, &["trends", "top-posts", "--topic", "flooding", "--sentiment", "negative"]);
    assert!(ok, "{err}");
    let (ok, _, err) = citypulse(&url, &db, &["trends", "--since", "next tuesday"]);
    assert!(!ok && err.contains("neither a duration"), "{err}");

    let client = clickhouse::Client::default().with_url(url).with_validation(false);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        client.query(&format!("DROP DATABASE IF EXISTS {db}")).execute().await.unwrap();
    });
}
