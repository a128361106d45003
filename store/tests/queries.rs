//! The query API: top posts and distinct authors on a small known set, SQL injection through every
//! string parameter, and retention by partition.

mod common;
mod support;

use schema::SentimentLabel;
use store::{Dimension, Granularity, Queries, TrendQuery, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400;

/// Six posts on 2025-11-24 (UTC): flooding x4 (3 negative, 1 positive), traffic x2, 4 authors.
fn posts() -> Vec<schema::AnalyzedPost> {
    let t0 = 1_763_990_000; // 2025-11-24T13:13:20Z
    let p = |id: &str, author: &str, dt: i64, probs, topics: &[&str], places: &[&str]| {
        post("mastodon_social", id, author, ts(t0 + dt), ts(t0 + dt + 60), probs, topics, places, "v1")
    };
    vec![
        p("1", "alice", 0, (60, 2, 2), &["flooding"], &["quan_1"]),
        p("2", "bob", 60, (40, 20, 4), &["flooding", "traffic"], &["quan_1", "thu_duc"]),
        p("3", "alice", 120, (50, 10, 4), &["flooding"], &[]),
        p("4", "carol", 180, (2, 2, 60), &["flooding"], &["go_vap"]),
        p("5", "dave", 240, (10, 44, 10), &["traffic"], &["thu_duc"]),
        p("6", "dave", 300, (1, 1, 62), &["other"], &[]),
    ]
}

async fn setup(url: &str, prefix: &str) -> (TestDb, Queries) {
    with_posts(TestDb::new(url, prefix).await).await
}

async fn with_posts(t: TestDb) -> (TestDb, Queries) {
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let r = writer.write(posts(), &CancellationToken::new()).await.expect("write");
    assert_eq!(r.inserted, 6);
    let q = Queries::new(t.client.clone(), t.db.clone(), t.zone);
    (t, q)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_posts_and_distinct_authors() {
    let Some(url) = common::clickhouse_url() else { return };
    top_posts_and_distinct_authors_of(setup(&url, "cp_query").await).await;
}

/// The same queries through the Distributed tables of the replicated cluster, the page of posts
/// (an `IN (SELECT ... FROM posts)` inside a query on `posts`) among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_same_queries_give_the_same_answers() {
    let Some(t) = TestDb::on_cluster("cp_cluster_query").await else { return };
    let (t, q) = with_posts(t).await;
    t.settle().await;
    let filter = store::PostFilter {
        since: ts(1_763_990_000 - DAY),
        until: ts(1_763_990_000 + DAY),
        topic: Some("flooding".into()),
        place: None,
        source: None,
        sentiment: None,
        search: None,
    };
    let page = q.posts_page(&filter, None, 3).await.expect("page");
    let keys: Vec<&str> = page.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["mastodon_social:4", "mastodon_social:3", "mastodon_social:2"]);
    top_posts_and_distinct_authors_of((t, q)).await;
}

async fn top_posts_and_distinct_authors_of((t, q): (TestDb, Queries)) {
    let (since, until) = (ts(1_763_990_000 - DAY), ts(1_763_990_000 + DAY));
    let neg = q.top_posts("flooding", Some(SentimentLabel::Negative), since, until, 10).await.expect("top");
    let keys: Vec<&str> = neg.iter().map(|p| p.key.as_str()).collect();
    // Most negative first: scores −58/64, −46/64, −36/64.
    assert_eq!(keys, ["mastodon_social:1", "mastodon_social:3", "mastodon_social:2"]);
    assert_eq!(neg[0].places, ["quan_1"]);
    let limited = q.top_posts("flooding", None, since, until, 2).await.expect("top");
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].key, "mastodon_social:4", "newest first without a sentiment");
    assert_eq!(q.distinct_authors(since, until, None, None).await.expect("authors"), 4);
    assert_eq!(q.distinct_authors(since, until, Some("flooding"), None).await.expect("authors"), 3);
    assert_eq!(q.distinct_authors(since, until, Some("traffic"), Some("thu_duc")).await.expect("authors"), 2);
    let by_place = q
        .trends(&TrendQuery {
            topic: Some("flooding".into()),
            ..TrendQuery::new(since, until, Dimension::Place, Granularity::Day)
        })
        .await
        .expect("trends");
    let got: Vec<(String, i64, i64)> = by_place.iter().map(|r| (r.key.clone(), r.posts, r.negative)).collect();
    assert_eq!(got, [("go_vap".into(), 1, 0), ("quan_1".into(), 2, 2), ("thu_duc".into(), 1, 1)]);
    assert_eq!(by_place[0].bucket.to_rfc3339(), "2025-11-24T00:00:00+07:00");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_through_every_parameter_is_harmless() {
    let Some(url) = common::clickhouse_url() else { return };
    let (t, q) = setup(&url, "cp_inject").await;
    let (since, until) = (ts(1_763_990_000 - DAY), ts(1_763_990_000 + DAY));
    let hostile = [
        "x' OR 1=1 --",
        "x\\' OR 1=1 --",
        "flooding' OR '1'='1",
        "'; DROP TABLE posts; --",
        "*",
        "?",
        "flooding\0",
        "x') OR ('1'='1",
    ];
    for h in hostile {
        for by in [Dimension::Topic, Dimension::Place, Dimension::Source] {
            for g in [Granularity::Hour, Granularity::Day] {
                let base = TrendQuery::new(since, until, by, g);
                for query in [
                    TrendQuery { topic: Some(h.into()), ..base.clone() },
                    TrendQuery { place: Some(h.into()), ..base.clone() },
                    TrendQuery { source: Some(h.into()), ..base.clone() },
                ] {
                    let rows = q.trends(&query).await.expect("a hostile value is just a value");
                    // '*' as a filter names the "all" slice, which is a legitimate (if odd) question.
                    if h != "*" {
                        assert!(rows.is_empty(), "{h:?} {query:?} -> {rows:?}");
                    }
                }
            }
        }
        for s in [None, Some(SentimentLabel::Negative), Some(SentimentLabel::Positive)] {
            assert!(q.top_posts(h, s, since, until, 10).await.expect("top").is_empty(), "{h:?}");
        }
        assert_eq!(q.distinct_authors(since, until, Some(h), None).await.expect("authors"), 0, "{h:?}");
        assert_eq!(q.distinct_authors(since, until, None, Some(h)).await.expect("authors"), 0, "{h:?}");
        // Names spliced into SQL refuse anything but plain words.
        assert!(store::Database::new(h).is_err());
        assert!(store::CityZone::new(h).is_err());
    }
    let n: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts").await;
    assert_eq!(n, 6, "posts intact");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_post_days_and_keeps_trends_longer() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_retention").await;
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let today = chrono::NaiveDate::from_ymd_opt(2025, 11, 24).expect("date");
    let noon = |days_ago: i64| ts(1_763_985_600 - days_ago * DAY); // 12:00 UTC
    let batch: Vec<_> = [0, 1, 5, 40, 120]
        .iter()
        .map(|&d| post("reddit_saigon", &format!("r{d}"), "a", noon(d), noon(d), (10, 10, 44), &["traffic"], &[], "v1"))
        .collect();
    writer.write(batch, &CancellationToken::new()).await.expect("write");
    let report = store::apply_retention(&t.client, &t.db, today, 30, 60).await.expect("retention");
    // Posts: 2025-10-15 (40 days) and 2025-07-27 (120 days) go. Trends: only July 2025 is wholly
    // older than 60 days; October stays.
    let mut dropped = report.dropped.clone();
    dropped.sort();
    assert_eq!(dropped, ["posts/20250727", "posts/20251015", "trends_daily/202507", "trends_hourly/202507"]);
    let left: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts").await;
    assert_eq!(left, 3);
    let trend_posts: i64 =
        t.scalar("SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = '*' AND place = '*'").await;
    assert_eq!(trend_posts, 4, "the 40-day-old post stays counted in the trends");
    let again = store::apply_retention(&t.client, &t.db, today, 30, 60).await.expect("retention");
    assert!(again.dropped.is_empty());

    // A writer with a 30-day horizon refuses to store (and so to re-count) a redelivered old post.
    let horizon = Writer::new(
        t.client.clone(),
        t.db.clone(),
        WriterConfig { posts_retention_days: Some(30), ..WriterConfig::default() },
    );
    let old = post("reddit_saigon", "r40", "a", noon(40), noon(40), (10, 10, 44), &["traffic"], &[], "v1");
    let fresh = post(
        "reddit_saigon",
        "new",
        "a",
        ts(chrono::Utc::now().timestamp() - 60),
        ts(chrono::Utc::now().timestamp()),
        (10, 10, 44),
        &["traffic"],
        &[],
        "v1",
    );
    let r = horizon.write(vec![old, fresh], &CancellationToken::new()).await.expect("write");
    assert_eq!((r.expired, r.inserted), (1, 1));
    t.drop_db().await;
}
