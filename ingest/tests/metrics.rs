//! The per-source metrics, read through a recording `metrics` recorder while a crawl runs against
//! the local Mastodon server: fetched, produced, filtered (no place), duplicates, errors by kind,
//! current backoff.

mod common;

use common::*;
use ingest::checkpoint::Checkpoints;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Counters and gauges by `name{label=value,...}` (labels sorted).
#[derive(Default)]
struct Recording {
    values: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Recording {
    fn handle(&self, key: &Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.values.lock().unwrap().entry(name).or_default().clone()
    }

    fn counter(&self, name: &str) -> u64 {
        self.values.lock().unwrap().get(name).map_or(0, |v| v.load(Ordering::Relaxed))
    }

    fn exists(&self, name: &str) -> bool {
        self.values.lock().unwrap().contains_key(name)
    }
}

struct Shared(Arc<Recording>);

impl Recorder for Shared {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.0.handle(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_metrics_count_what_happened() {
    let recording = Arc::new(Recording::default());
    metrics::set_global_recorder(Shared(recording.clone())).unwrap();

    let server = TestServer::start().await;
    server.set_statuses(1..=20); // 15 name a place, 5 do not
    server.script([Scripted::Garbage, Scripted::TooMany(Some("0".into()))]);
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let source = schema::SourceId::new("mastodon_test").unwrap();
    Checkpoints::open(dir.path()).unwrap().save(&source, "tag:saigon", "0").unwrap();
    let toml = format!(
        "[defaults]\nbackoff_initial_ms = 20\n\n[[mastodon]]\nname = \"mastodon_test\"\nbase_url = \"{}\"\nhashtags = [\"saigon\"]\npoll_interval_ms = 1000\n",
        server.base()
    );
    let settings = settings(&toml, &kafka, dir.path());
    let shared = shared(&settings);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared.clone(), shutdown.clone()));
    let posts = read_posts(&kafka, 15, Duration::from_millis(300)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    assert_eq!(posts.len(), 15);

    // The same posts again: the duplicate window drops every one.
    let again = ingest::crawl::select_posts(&shared, true, posts, "mastodon_test");
    assert!(again.is_empty());

    let s = "source=mastodon_test";
    assert_eq!(recording.counter(&format!("citypulse_ingest_fetched_posts_total{{{s}}}")), 20);
    assert_eq!(recording.counter(&format!("citypulse_ingest_produced_posts_total{{{s}}}")), 15);
    assert_eq!(recording.counter(&format!("citypulse_ingest_filtered_posts_total{{reason=no_place,{s}}}")), 5);
    assert_eq!(recording.counter(&format!("citypulse_ingest_duplicate_posts_total{{{s}}}")), 15);
    assert_eq!(recording.counter(&format!("citypulse_ingest_errors_total{{kind=malformed,{s}}}")), 1);
    assert_eq!(recording.counter(&format!("citypulse_ingest_errors_total{{kind=rate_limited,{s}}}")), 1);
    assert!(recording.exists(&format!("citypulse_ingest_backoff_seconds{{{s}}}")));
}
