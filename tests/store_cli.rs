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

/// A post of `topic` published an hour ago; probabilities out of 64 (exact in f32).
fn analyzed(id: &str, topic: &str, probs: (u8, u8, u8)) -> schema::AnalyzedPost {
    let p = |x: u8| f32::from(x) / 64.0;
    let probabilities =
        schema::SentimentProbabilities { negative: p(probs.0), neutral: p(probs.1), positive: p(probs.2) };
    let created = chrono::Utc::now() - chrono::Duration::hours(1);
    schema::AnalyzedPost {
        id: id.into(),
        source: schema::SourceId::new("mastodon_social").unwrap(),
        url: None,
        author: "a".repeat(32),
        lang_declared: Some("vi".into()),
        created_at: created,
        fetched_at: created,
        places: vec![],
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: format!("bài {id} về {topic}"),
        lang: schema::Lang::Vi,
        sentiment: schema::Sentiment::from_probabilities(probabilities),
        topics: vec![schema::TopicScore { id: schema::TopicId::new(topic).unwrap(), score: 0.75 }],
        model: schema::ModelInfo { id: "multilingual-e5-small".into(), version: "v1".into() },
        analyzed_at: created,
        embedding: None,
        search: None,
    }
}

#[test]
fn migrate_then_query_trends() {
    let Some(url) = common::clickhouse_url() else { return };
    let db = common::unique_name("cli");
    let (ok, first, err) = citypulse(&url, &db, &["migrate"]);
    assert!(ok, "{err}");
    assert!(first.contains("migrations applied: [1, 2, 3, 4, 5, 6, 7, 8, 9]"), "{first}");
    let (ok, again, err) = citypulse(&url, &db, &["migrate"]);
    assert!(ok, "{err}");
    assert!(
        again.contains("migrations applied: []") && again.contains("already applied: [1, 2, 3, 4, 5, 6, 7, 8, 9]"),
        "{again}"
    );

    // Empty first: the table says so.
    let (ok, table, err) = citypulse(&url, &db, &["trends", "--since", "7d", "--by", "topic"]);
    assert!(ok, "{err}");
    assert!(table.contains("bucket") && table.contains("no posts"), "{table}");

    // Then known posts (scores -0.72, -0.50 and +0.62 on flooding, +0.69 on traffic), and the
    // commands must report exactly them.
    let client = clickhouse::Client::default().with_url(url.clone()).with_validation(false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let posts = vec![
        analyzed("cli1", "flooding", (50, 10, 4)),
        analyzed("cli2", "flooding", (40, 16, 8)),
        analyzed("cli3", "traffic", (4, 12, 48)),
        analyzed("cli4", "flooding", (8, 8, 48)),
    ];
    let writer = store::Writer::new(client.clone(), store::Database::new(&db).unwrap(), Default::default());
    let report = rt.block_on(writer.write(posts, &tokio_util::sync::CancellationToken::new())).unwrap();
    assert_eq!(report.inserted, 4, "{report:?}");

    let (ok, table, err) = citypulse(&url, &db, &["trends", "--since", "7d", "--by", "topic"]);
    assert!(ok, "{err}");
    assert!(table.contains("flooding") && table.contains("traffic") && !table.contains("no posts"), "{table}");
    let (ok, csv, err) = citypulse(&url, &db, &["trends", "--since", "2d", "--by", "topic", "--format", "csv"]);
    assert!(ok, "{err}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("bucket,key,posts,avg_score,net_sentiment,positive,neutral,negative"), "{csv}");
    // All four share one publication time, so one day bucket holds each key.
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').skip(1).map(str::to_owned).collect()).collect();
    let row = |key: &str| rows.iter().find(|r| r[0] == key).cloned().unwrap_or_else(|| panic!("no {key} row: {csv}"));
    assert_eq!(row("flooding")[1..], ["3", "-0.1979", "-0.3333", "1", "0", "2"], "{csv}");
    assert_eq!(row("traffic")[1..], ["1", "0.6875", "1.0000", "1", "0", "0"], "{csv}");
    let (ok, csv, err) =
        citypulse(&url, &db, &["trends", "--since", "2026-11-01", "--format", "csv", "--granularity", "hour"]);
    assert!(ok, "{err}");
    assert!(csv.starts_with("bucket,key,posts"), "{csv}");

    // The negative flooding posts, most negative first; the positive one and the traffic post are not
    // negative flooding posts.
    let (ok, top, err) =
        citypulse(&url, &db, &["trends", "top-posts", "--topic", "flooding", "--sentiment", "negative"]);
    assert!(ok, "{err}");
    let top: Vec<&str> = top.lines().collect();
    assert_eq!(top.len(), 2, "{top:#?}");
    for (line, (key, score)) in top.iter().zip([("mastodon_social:cli1", "-0.72"), ("mastodon_social:cli2", "-0.50")]) {
        assert!(line.contains(&format!("negative {score}  {key}  bài")), "{top:#?}");
    }
    let (ok, _, err) = citypulse(&url, &db, &["trends", "--since", "next tuesday"]);
    assert!(!ok && err.contains("neither a duration"), "{err}");

    rt.block_on(async {
        client.query(&format!("DROP DATABASE IF EXISTS {db}")).execute().await.unwrap();
    });
}
