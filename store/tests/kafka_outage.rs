//! Issue 28, guarantee 6 (store half): the store consumer through a Kafka outage. librdkafka's
//! in-process mock cluster in front (its only broker taken down for a few seconds mid-stream, then
//! brought back), a real ClickHouse behind. Every post must be counted exactly once in `posts` and
//! in the trend tables, the consumer must keep running through the outage, and the group's committed
//! offsets must reach the end of the topic once Kafka is back.
//! Needs CITYPULSE_TEST_CLICKHOUSE_URL.

mod common;
mod support;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::config::services::KafkaConfig;
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};
use store::{ConsumerSettings, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "posts.analyzed";
const DLQ: &str = "posts.dlq";
const GROUP: &str = "cp-kafka-outage-store";
const PARTITIONS: i32 = 2;
/// The mock cluster's one broker (ids start at 1).
const BROKER: i32 = 1;
/// Long enough for every client to notice (connections refused, requests failing), well below the
/// consumer's session timeout, so the outage itself does not also force a rebalance.
const OUTAGE: Duration = Duration::from_secs(4);

/// Polls `cond` until it holds; panics with `what` after `limit`, or at once, with the store's own
/// result, if the store stops first: through an outage it must keep running until shutdown.
async fn wait_while_running<F, Fut>(
    what: &str,
    limit: Duration,
    task: &mut tokio::task::JoinHandle<Result<store::RunStats, store::StoreError>>,
    mut cond: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !cond().await {
        if task.is_finished() {
            panic!("the store stopped before shutdown, waiting for {what}: {:?}", task.await);
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn settings(brokers: &str) -> ConsumerSettings {
    // Small batches: the stream is many flushes (and commits) long, so the outage lands between
    // and during them rather than after the last one.
    let s = support::consumer_settings(brokers, GROUP, 8, Duration::from_millis(100));
    // A session well above the outage, so the outage itself does not also force a rebalance.
    ConsumerSettings { kafka: KafkaConfig { session_timeout_ms: 10_000, ..s.kafka }, ..s }
}

/// Queues every post at once (`send_result` does not wait), then waits for each acknowledgement:
/// posts fed while the broker is down are all in the producer's queue, not just the first.
async fn produce(producer: &FutureProducer, posts: &[schema::AnalyzedPost]) {
    let mut acks = Vec::with_capacity(posts.len());
    for p in posts {
        let (key, payload) = (p.key(), schema::encode(p));
        let record = FutureRecord::to(TOPIC).key(&key).payload(&payload);
        acks.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for ack in acks {
        ack.await.expect("delivery future").expect("produce");
    }
}

fn posts(range: std::ops::Range<usize>, seed: u64) -> Vec<schema::AnalyzedPost> {
    let mut rng = Lcg(seed);
    let day = chrono::Utc::now().timestamp() - 86_400;
    range
        .map(|i| {
            let created = ts(day + rng.below(3_600) as i64);
            let (probs, topics, places) = random_labels(&mut rng);
            post(SOURCES[i % 3], &format!("k{i}"), "author", created, created, probs, &topics, &places, "v1")
        })
        .collect()
}

/// Catches: the consumer loop giving up on a Kafka error (in `consumer::consume`, `return
/// Err(e.into())` instead of `continue` after "kafka receive error"): with the broker down,
/// `recv()` reports `BrokerTransportFailure`, the store stops mid-stream and the posts fed during
/// and after the outage are never stored. Tried: fails here, "the store stopped before shutdown …
/// BrokerTransportFailure". Also guards the counting under redelivery: in some runs the consumer
/// reads ~100 of the 240 messages again after the outage (commits lost in it, the group rejoined),
/// and `posts` and the trend tables must still hold every post exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_rides_out_a_kafka_outage_and_counts_every_post_once() {
    let Some(url) = common::clickhouse_url() else { return };
    tokio::time::timeout(Duration::from_secs(60), async {
        let t = TestDb::new(&url, "cp_kafka_outage").await;
        let client = clickhouse::Client::default().with_url(&url).with_validation(false);
        let writer = Writer::new(client, t.db.clone(), WriterConfig::default());
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
        mock.create_topic(DLQ, 1, 1).expect("dlq topic");
        let brokers = mock.bootstrap_servers();
        // Idempotent: a produce request cut off by the outage and retried is not appended twice, so
        // the topic holds each post once and the counts below are exact.
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let total_sql = "SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = '*' AND place = '*'";
        let total = || t.scalar::<i64>(total_sql);
        let before = posts(0..120, 61);
        let during = posts(120..180, 62);
        let after = posts(180..240, 63);

        produce(&producer, &before).await;
        let shutdown = CancellationToken::new();
        let mut task = support::spawn_consumer(settings(&brokers), writer, shutdown.clone());
        // Mid-stream: the consumer has joined and written its first batches.
        wait_while_running("the first posts stored", Duration::from_secs(20), &mut task, || async {
            total().await > 0
        })
        .await;

        mock.broker_down(BROKER).expect("broker down");
        let down_at = Instant::now();
        // Fed while Kafka is down: the test producer queues them and delivers once it is back.
        let feeding = {
            let (producer, during) = (producer.clone(), during.clone());
            tokio::spawn(async move { produce(&producer, &during).await })
        };
        tokio::time::sleep(OUTAGE).await;
        mock.broker_up(BROKER).expect("broker up");
        eprintln!("broker down for {:?}", down_at.elapsed());
        feeding.await.expect("produced during the outage");
        produce(&producer, &after).await;

        let all = before.len() + during.len() + after.len();
        wait_while_running("every post stored", Duration::from_secs(30), &mut task, || async {
            total().await == all as i64
        })
        .await;
        let end = testkit::kafka::ends(&brokers, TOPIC, PARTITIONS).await;
        assert_eq!(end.values().map(|e| e.unwrap_or(0)).sum::<i64>(), all as i64, "the topic holds each post once");
        wait_while_running("every offset committed", Duration::from_secs(20), &mut task, || async {
            testkit::kafka::committed(&brokers, GROUP, TOPIC, PARTITIONS).await == end
        })
        .await;
        shutdown.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("consumer stopped in time")
            .expect("join")
            .expect("run");
        eprintln!("{stats:?}");
        // Redelivered messages (a commit lost in the outage) are recognised, not counted again.
        assert_eq!(stats.inserted, all as u64, "each post inserted once: {stats:?}");
        assert_eq!(stats.inserted + stats.duplicates, stats.messages, "every message accounted for: {stats:?}");
        assert_eq!((stats.replaced, stats.stale, stats.dlq), (0, 0, 0), "{stats:?}");

        let latest: HashMap<String, schema::AnalyzedPost> =
            before.into_iter().chain(during).chain(after).map(|p| (p.key(), p)).collect();
        let keys: u64 = t.scalar("SELECT toUInt64(uniqExact(key)) FROM DB.posts").await;
        let bad_keys: u64 = t
            .scalar(
                "SELECT toUInt64(count()) FROM (SELECT key, sum(sign) AS s FROM DB.posts GROUP BY key) WHERE s != 1",
            )
            .await;
        let rows: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts").await;
        assert_eq!(
            (keys, bad_keys, rows),
            (latest.len() as u64, 0, latest.len() as u64),
            "keys, keys not live once, rows"
        );
        for hourly in [true, false] {
            assert_eq!(actual_cells(&t, hourly).await, expected_cells(&latest, hourly), "trend cells, hourly={hourly}");
        }
        t.drop_db().await;
    })
    .await
    .expect("finished within 60 s");
}
