//! The store service's periodic duties against a real ClickHouse: the reachability watch behind
//! /healthz, and scheduled retention.

mod common;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Retention, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400;

/// Runs [`store::watch_health`] for `run` and returns every report it made.
async fn watch_for(writer: Writer, limit: Duration, run: Duration) -> Vec<Option<String>> {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(store::watch_health(
        writer,
        limit,
        {
            let seen = seen.clone();
            move |r| seen.lock().expect("lock").push(r)
        },
        shutdown.clone(),
    ));
    tokio::time::sleep(run).await;
    shutdown.cancel();
    task.await.expect("watch");
    let reports = seen.lock().expect("lock").clone();
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_bad_only_after_clickhouse_is_unreachable_longer_than_the_limit() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_health").await;
    // Reachable and idle: the probe keeps it healthy.
    let up = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let reports = watch_for(up, Duration::from_secs(1), Duration::from_millis(2500)).await;
    assert!(!reports.is_empty() && reports.iter().all(Option::is_none), "{reports:?}");

    // Nothing listens on port 1: connection refused, as when the server is down. No write is ever
    // attempted, so only the probe can notice.
    let dead = clickhouse::Client::default().with_url("http://127.0.0.1:1").with_validation(false);
    let down = Writer::new(dead, t.db.clone(), WriterConfig::default());
    let reports = watch_for(down, Duration::from_secs(1), Duration::from_millis(3500)).await;
    assert_eq!(reports.first(), Some(&None), "healthy until the limit has passed: {reports:?}");
    let last = reports.last().cloned().flatten().expect("unhealthy at the end");
    assert!(last.contains("unreachable"), "{last}");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_retention_drops_old_post_days_and_keeps_the_trend_tables() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_sched_ret").await;
    retention_drops_old_post_days(&t).await;
    t.drop_db().await;
}

/// The same on the replicated cluster: partitions dropped `ON CLUSTER` from every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_retention_drops_old_post_days_on_every_replica() {
    let Some(t) = TestDb::on_cluster("cp_cluster_ret").await else { return };
    retention_drops_old_post_days(&t).await;
    let db = &t.db;
    for (n, replica) in t.replicas.iter().enumerate() {
        let days: u64 = replica
            .query(&format!("SELECT toUInt64(uniqExact(partition)) FROM system.parts WHERE database = '{db}' AND table = 'posts_local' AND active"))
            .fetch_one()
            .await
            .expect("parts");
        assert_eq!(days, 2, "replica {}: day partitions of posts left", n + 1);
    }
    t.drop_db().await;
}

async fn retention_drops_old_post_days(t: &TestDb) {
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let now = chrono::Utc::now().timestamp();
    let batch: Vec<_> = [0, 2, 40, 45]
        .iter()
        .map(|&d| {
            let at = ts(now - d * DAY - 60);
            post("reddit_saigon", &format!("r{d}"), "a", at, at, (10, 10, 44), &["traffic"], &["quan_1"], "v1")
        })
        .collect();
    writer.write(batch, &CancellationToken::new()).await.expect("write");

    let shutdown = CancellationToken::new();
    let r = Retention { posts_days: 30, trends_days: 730, every: Duration::from_millis(200) };
    let task = tokio::spawn(store::run_retention(t.client.clone(), t.db.clone(), r, shutdown.clone()));
    let mut left = u64::MAX;
    for _ in 0..50 {
        left = t.scalar("SELECT toUInt64(count()) FROM DB.posts").await;
        if left == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later runs find nothing more to drop and do no harm.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    task.await.expect("retention task");
    assert_eq!(left, 2, "the 40- and 45-day-old posts' days are dropped");
    let kept: u64 = t.scalar("SELECT toUInt64(uniqExact(key)) FROM DB.posts").await;
    assert_eq!(kept, 2);
    for table in ["trends_hourly", "trends_daily"] {
        let counted: i64 =
            t.scalar(&format!("SELECT toInt64(sum(posts)) FROM DB.{table} WHERE topic = '*' AND place = '*'")).await;
        assert_eq!(counted, 4, "{table}: trends outlive the posts they count");
    }
    t.settle().await;
}
