//! The delivery guarantees of the store under injected faults (issue 28), with ClickHouse behind
//! [`testkit::proxy::FaultProxy`]:
//!
//! - the writer retries through dropped requests and stores every post once;
//! - the writer recognises an INSERT that ClickHouse committed before the connection broke (the
//!   answer never reached it) and does not write it again on the retry;
//! - the store consumer stores and commits a partition's offsets only after ClickHouse accepted the
//!   batch, never on shutdown while writes fail, and a restart then stores every post exactly once.
//!
//! Each test names the mutation of the code it catches. Needs CITYPULSE_TEST_CLICKHOUSE_URL; Kafka is
//! librdkafka's in-process mock cluster.

mod common;
mod support;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};
use store::{Backoff, ConsumerSettings, Writer, WriterConfig};
use support::*;
use testkit::proxy::FaultProxy;
use tokio_util::sync::CancellationToken;

/// No test here may take longer than this, whatever hangs.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Short pauses: the proxy's faults are immediate, so long backoffs would only slow the tests.
fn fast_writer_config() -> WriterConfig {
    WriterConfig {
        backoff: Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(100) },
        attempt_timeout: Duration::from_secs(5),
        ..WriterConfig::default()
    }
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {TEST_LIMIT:?}"),
    }
}

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

/// Every stored key's net sign (its live versions) must be exactly 1 and no version may be live
/// twice; returns the number of keys.
async fn assert_one_live_row_per_key(t: &TestDb, expected_keys: usize) {
    let keys: u64 = t.scalar("SELECT toUInt64(uniqExact(key)) FROM DB.posts").await;
    let bad_keys: u64 = t
        .scalar("SELECT toUInt64(count()) FROM (SELECT key, sum(sign) AS s FROM DB.posts GROUP BY key) WHERE s != 1")
        .await;
    let bad_versions: u64 = t
        .scalar(
            "SELECT toUInt64(count()) FROM \
             (SELECT key, version, sum(sign) AS s FROM DB.posts GROUP BY key, version) WHERE s NOT IN (0, 1)",
        )
        .await;
    assert_eq!((keys, bad_keys, bad_versions), (expected_keys as u64, 0, 0), "keys, keys not live once, versions");
}

async fn assert_trends_exact(t: &TestDb, latest: &HashMap<String, schema::AnalyzedPost>) {
    for hourly in [true, false] {
        assert_eq!(actual_cells(t, hourly).await, expected_cells(latest, hourly), "trend cells, hourly={hourly}");
    }
}

fn assert_accounted(r: &store::writer::WriteReport, batch: usize) {
    assert!(r.rejected.is_empty(), "nothing is permanent here: {:?}", r.rejected);
    let sum = r.inserted + r.replaced + r.duplicates + r.stale + r.expired + r.rejected.len();
    assert_eq!(sum, batch, "every post of the batch in exactly one count: {r:?}");
}

/// Catches: a network error classified as permanent (`Retry::Permanent` for `Error::Network` in
/// `ClickHouseError::retry`), or a `write_retrying` that gives up after the first failure — the
/// batch would then go post by post and end in `rejected`, not in ClickHouse (tried: fails here).
/// Also catches a retry that skips the stored-version lookup (tried: a re-analysis then writes
/// version 1 again without cancelling the stored row, and the trend cells are off). A dropped
/// INSERT never reached ClickHouse, so this test cannot tell a fresh lookup from one reused from
/// the first attempt: the next test can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_retries_through_dropped_requests_and_stores_every_post_once() {
    let Some(url) = common::clickhouse_url() else { return };
    within("dropped requests", async {
        let t = TestDb::new(&url, "cp_g_drop").await;
        let proxy = FaultProxy::start(&url).await.expect("proxy");
        let client = clickhouse::Client::default().with_url(proxy.url()).with_validation(false);
        let writer = Writer::new(client, t.db.clone(), fast_writer_config());
        // Duplicates, re-analyses (a −1 and a +1 row per re-analysed post), stale redeliveries.
        let (all, latest) = stream(400, 28);
        let shutdown = CancellationToken::new();
        let mut planned = 0u64;
        for (i, batch) in all.chunks(50).enumerate() {
            // Odd batches lose their first requests (the lookup, then the retry's lookup); even ones
            // lose the INSERT itself after a lookup that worked.
            if i % 2 == 1 {
                proxy.drop_next_requests(2);
            } else {
                proxy.drop_next_inserts(1);
            }
            let faults_before = proxy.faults();
            let r = writer.write(batch.to_vec(), &shutdown).await.expect("write");
            assert_accounted(&r, batch.len());
            // A batch with nothing to write (all redeliveries) sends no INSERT: its fault stays armed.
            planned += proxy.faults() - faults_before;
            proxy.heal();
        }
        eprintln!("{} faults injected over {} requests", proxy.faults(), proxy.requests());
        assert!(planned >= 8, "the proxy really fired in most batches: {planned}");
        assert_eq!(planned, proxy.faults());
        assert_trends_exact(&t, &latest).await;
        assert_one_live_row_per_key(&t, latest.len()).await;
        t.drop_db().await;
    })
    .await;
}

/// Catches: a retry that reuses the first attempt's stored-version lookup, or skips it (in
/// `Writer::write_retrying`/`attempt`: planning the retry from the lookup made before the INSERT
/// instead of a fresh one). ClickHouse committed the first INSERT, so such a retry writes the batch
/// twice: new posts get a second +1 row, re-analyses a second −1/+1 pair, and the trend views count
/// them all again. Tried: `attempt` reusing the first attempt's lookup on retries, and skipping
/// it, both fail this test on the trend cells (every count doubled). Not caught here: network
/// errors classified as permanent, since the post-by-post fallback looks up again and finds the
/// committed rows; the other two tests catch that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_committed_before_the_connection_broke_is_not_written_again() {
    let Some(url) = common::clickhouse_url() else { return };
    within("commit then break", async {
        let t = TestDb::new(&url, "cp_g_break").await;
        let proxy = FaultProxy::start(&url).await.expect("proxy");
        let client = clickhouse::Client::default().with_url(proxy.url()).with_validation(false);
        let writer = Writer::new(client, t.db.clone(), fast_writer_config());
        let (all, latest) = stream(400, 2828);
        let shutdown = CancellationToken::new();
        let mut broken = 0u64;
        let mut rewritten = Vec::new();
        for batch in all.chunks(60) {
            proxy.break_next_insert_responses(1);
            let (faults_before, inserts_before) = (proxy.faults(), proxy.inserts_forwarded());
            let r = writer.write(batch.to_vec(), &shutdown).await.expect("write");
            assert_accounted(&r, batch.len());
            let fired = proxy.faults() - faults_before;
            // The retry should find the committed rows and write nothing: no second INSERT.
            if fired > 0 && (proxy.inserts_forwarded() - inserts_before != 1 || r.rows_written != 0) {
                rewritten.push(r);
            }
            broken += fired;
            proxy.heal();
        }
        eprintln!("{broken} committed INSERTs lost their answer; {} requests", proxy.requests());
        assert!(broken >= 5, "the proxy really broke committed INSERTs: {broken}");
        // The data first: it is the guarantee; the request count below says why it failed.
        assert_trends_exact(&t, &latest).await;
        assert_one_live_row_per_key(&t, latest.len()).await;
        assert!(rewritten.is_empty(), "retries wrote committed batches again: {rewritten:?}");
        t.drop_db().await;
    })
    .await;
}

const TOPIC: &str = "posts.analyzed";
const GROUP: &str = "cp-guarantees-store";
const PARTITIONS: i32 = 2;

fn consumer_settings(brokers: &str) -> ConsumerSettings {
    support::consumer_settings(brokers, GROUP, 64, Duration::from_millis(100))
}

async fn produce(producer: &FutureProducer, posts: &[schema::AnalyzedPost]) {
    for p in posts {
        producer
            .send(FutureRecord::to(TOPIC).key(&p.key()).payload(&schema::encode(p)), Duration::from_secs(10))
            .await
            .expect("produce");
    }
}

fn posts(range: std::ops::Range<usize>, seed: u64) -> Vec<schema::AnalyzedPost> {
    let mut rng = Lcg(seed);
    let day = chrono::Utc::now().timestamp() - 86_400;
    range
        .map(|i| {
            let created = ts(day + rng.below(3_600) as i64);
            let (probs, topics, places) = random_labels(&mut rng);
            post(SOURCES[i % 3], &format!("g{i}"), "author", created, created, probs, &topics, &places, "v1")
        })
        .collect()
}

/// Catches: storing a batch's offsets before `writer.write` in `consumer::flush` (or storing them
/// when the write ends in `StoreError::Cancelled`): the final commit on shutdown would then commit
/// offsets past the batch ClickHouse never accepted, and the restarted consumer would skip it —
/// the committed offsets here would move past the first batch's ends and the second batch's posts
/// would never be stored. Tried: moving the `store_offset` loop above the write, and storing the
/// batch's offsets when `writer.write` returns `Cancelled`, both fail this test on the committed
/// offsets. Also fails when network errors are classified as permanent (the batch goes to the DLQ
/// while ClickHouse is merely unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_committed_only_after_clickhouse_accepted_the_batch_never_on_cancel() {
    let Some(url) = common::clickhouse_url() else { return };
    within("consumer under failing writes", async {
        let t = TestDb::new(&url, "cp_g_offsets").await;
        let proxy = FaultProxy::start(&url).await.expect("proxy");
        let client = clickhouse::Client::default().with_url(proxy.url()).with_validation(false);
        let writer = Writer::new(client, t.db.clone(), fast_writer_config());
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
        mock.create_topic("posts.dlq", 1, 1).expect("dlq topic");
        let brokers = mock.bootstrap_servers();
        let producer: FutureProducer =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
        let total_sql = "SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = '*' AND place = '*'";
        let stored = |want: i64| {
            let t = &t;
            move || async move { t.scalar::<i64>(total_sql).await == want }
        };
        let first = posts(0..40, 1);
        let second = posts(40..80, 2);

        // 1. ClickHouse reachable: the first batch is stored and its offsets committed.
        produce(&producer, &first).await;
        let shutdown = CancellationToken::new();
        let task = support::spawn_consumer(consumer_settings(&brokers), writer.clone(), shutdown.clone());
        wait_until("the first 40 posts stored", Duration::from_secs(20), stored(40)).await;
        let after_first = testkit::kafka::ends(&brokers, TOPIC, PARTITIONS).await;
        wait_until("the first batch's offsets committed", Duration::from_secs(10), || async {
            testkit::kafka::committed(&brokers, GROUP, TOPIC, PARTITIONS).await == after_first
        })
        .await;

        // 2. ClickHouse unreachable: the consumer takes the second batch and its writes keep failing;
        // then shutdown. Several faults: the writer has retried, so the batch was in flight for a while.
        proxy.set_down(true);
        produce(&producer, &second).await;
        assert!(proxy.wait_for_faults(3, Duration::from_secs(20)).await, "the consumer's writes failed");
        shutdown.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("consumer stopped in time")
            .expect("join")
            .expect("run");
        eprintln!("first run {stats:?}; {} faults", proxy.faults());
        assert_eq!(stats.inserted, 40, "only the first batch reached ClickHouse: {stats:?}");
        assert_eq!(
            testkit::kafka::committed(&brokers, GROUP, TOPIC, PARTITIONS).await,
            after_first,
            "offsets committed past what ClickHouse accepted"
        );
        let total: i64 = t.scalar(total_sql).await;
        assert_eq!(total, 40);

        // 3. ClickHouse back: a restart re-reads exactly the second batch and stores it once.
        proxy.set_down(false);
        let shutdown = CancellationToken::new();
        let task = support::spawn_consumer(consumer_settings(&brokers), writer.clone(), shutdown.clone());
        wait_until("all 80 posts stored", Duration::from_secs(20), stored(80)).await;
        let end = testkit::kafka::ends(&brokers, TOPIC, PARTITIONS).await;
        wait_until("every offset committed", Duration::from_secs(10), || async {
            testkit::kafka::committed(&brokers, GROUP, TOPIC, PARTITIONS).await == end
        })
        .await;
        shutdown.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("consumer stopped in time")
            .expect("join")
            .expect("run");
        eprintln!("restart {stats:?}");
        assert_eq!((stats.messages, stats.inserted, stats.duplicates), (40, 40, 0), "{stats:?}");
        let latest: HashMap<String, schema::AnalyzedPost> =
            first.into_iter().chain(second).map(|p| (p.key(), p)).collect();
        assert_trends_exact(&t, &latest).await;
        assert_one_live_row_per_key(&t, latest.len()).await;
        t.drop_db().await;
    })
    .await;
}
