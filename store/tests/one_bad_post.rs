//! Issue 28, item 4: one post ClickHouse cannot store, in a batch of good ones. The store consumer
//! (librdkafka's in-process mock cluster in front, a real ClickHouse behind) must store every good
//! post exactly once and send exactly the bad one to posts.dlq, with kind `unrepresentable`.
//!
//! The bad post decodes and validates (the schema checks `created_at` and `fetched_at`, not
//! `analyzed_at`), but its `analyzed_at` lies outside ClickHouse's DateTime range, so
//! `PostRow::from_post` refuses it and the writer reports it as `unrepresentable`.
//! Needs CITYPULSE_TEST_CLICKHOUSE_URL.

mod common;
mod support;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::config::services::KafkaConfig;
use std::future::Future;
use std::time::{Duration, Instant};
use store::{ConsumerSettings, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "posts.analyzed";
const DLQ: &str = "posts.dlq";
const GROUP: &str = "cp-one-bad-post";

/// Polls `cond` until it holds; panics with `what` after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !cond().await {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn settings(brokers: &str) -> ConsumerSettings {
    // Long enough that every message, all produced before the consumer starts, lands in the one
    // batch: the bad post must be judged inside a good batch, not alone.
    support::consumer_settings(brokers, GROUP, 64, Duration::from_secs(2))
}

/// Catches (each tried, each fails this test):
/// - one unrepresentable post failing its whole batch (in `Writer::candidates`, `return
///   Vec::new()` instead of `continue` after the `RowError`): nothing stored, `inserted` is 0;
/// - the writer dropping it silently (no `report.rejected.push` for the `RowError`): the offset
///   moves past the post and the DLQ stays empty (`dlq` is 0);
/// - a wrong kind (`clickhouse_rejected` for a `RowError`): the DLQ record's kind check fails;
/// - `consumer::flush` not dead-lettering the writer's `rejected` (without the
///   `dead.extend(report.rejected…)` line): the DLQ stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unrepresentable_post_goes_to_the_dlq_and_the_rest_of_its_batch_is_stored_once() {
    let Some(url) = common::clickhouse_url() else { return };
    tokio::time::timeout(Duration::from_secs(60), async {
        let t = TestDb::new(&url, "cp_one_bad").await;
        let client = clickhouse::Client::default().with_url(&url).with_validation(false);
        let writer = Writer::new(client, t.db.clone(), WriterConfig::default());
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic(TOPIC, 1, 1).expect("topic");
        mock.create_topic(DLQ, 1, 1).expect("dlq topic");
        let brokers = mock.bootstrap_servers();
        let producer: FutureProducer =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");

        let mut rng = Lcg(4);
        let day = chrono::Utc::now().timestamp() - 86_400;
        let mut posts: Vec<schema::AnalyzedPost> = (0..30)
            .map(|i| {
                let created = ts(day + rng.below(3_600) as i64);
                let (probs, topics, places) = random_labels(&mut rng);
                post(SOURCES[i % 3], &format!("ok{i}"), "author", created, created, probs, &topics, &places, "v1")
            })
            .collect();
        // In the middle of the batch: year 2200 does not fit a DateTime (UInt32 seconds).
        let mut bad = posts[0].clone();
        bad.id = "bad".into();
        bad.analyzed_at = chrono::DateTime::parse_from_rfc3339("2200-01-01T00:00:00Z").expect("date").into();
        let bad_key = bad.key();
        let bad_at = 15;
        posts.insert(bad_at, bad);
        for p in &posts {
            let payload = schema::encode(p);
            producer
                .send(FutureRecord::to(TOPIC).key(&p.key()).payload(&payload), Duration::from_secs(10))
                .await
                .expect("produce");
        }

        let shutdown = CancellationToken::new();
        let task = support::spawn_consumer(settings(&brokers), writer, shutdown.clone());
        // Everything handled when the group's offset is past the last message.
        let end = posts.len() as i64;
        wait_until("the batch committed", Duration::from_secs(30), || async {
            testkit::kafka::committed(&brokers, GROUP, TOPIC, 1).await[&0] == Some(end)
        })
        .await;
        shutdown.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("consumer stopped in time")
            .expect("join")
            .expect("run");
        eprintln!("{stats:?}");
        assert_eq!((stats.messages, stats.batches), (31, 1), "all 31 messages in one batch: {stats:?}");
        assert_eq!((stats.inserted, stats.dlq), (30, 1), "{stats:?}");

        // The good posts: each stored once (one live row, no other rows), the bad one not at all.
        let rows: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts").await;
        let keys: u64 = t.scalar("SELECT toUInt64(uniqExact(key)) FROM DB.posts WHERE key LIKE '%:ok%'").await;
        let live: i64 = t.scalar("SELECT toInt64(sum(sign)) FROM DB.posts").await;
        assert_eq!((rows, keys, live), (30, 30, 30), "rows, good keys, live rows");
        let total: i64 =
            t.scalar("SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = '*' AND place = '*'").await;
        assert_eq!(total, 30, "the trend tables count the good posts once");

        let brokers2 = brokers.clone();
        let dlq = tokio::task::spawn_blocking(move || {
            let kafka = KafkaConfig { brokers: brokers2, topic_dlq: DLQ.into(), ..KafkaConfig::default() };
            store::dlq::read_all(&kafka, Duration::from_secs(10))
        })
        .await
        .expect("join")
        .expect("read the DLQ");
        assert_eq!(dlq.len(), 1, "exactly one DLQ record: {dlq:?}");
        let record = dlq[0].record.clone().expect("a DLQ record");
        assert_eq!(record.error_kind, "unrepresentable", "{record:?}");
        assert_eq!(record.stage, schema::Stage::Store);
        assert_eq!((record.key.as_deref(), record.offset), (Some(bad_key.as_str()), bad_at as i64), "{record:?}");
        assert!(record.reason.contains("analyzed_at"), "the reason names the field: {}", record.reason);
        t.drop_db().await;
    })
    .await
    .expect("finished within 60 s");
}
