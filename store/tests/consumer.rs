//! The `citypulse store` loop against librdkafka's in-process mock cluster and a real ClickHouse:
//! duplicates and re-analyses produce exact counts, undecodable messages land in the DLQ with their
//! reason, and offsets are committed so a restarted consumer re-reads nothing.

mod common;
mod support;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use schema::config::services::KafkaConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{ConsumerSettings, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;
use tracing::instrument::WithSubscriber;

fn settings(brokers: &str) -> ConsumerSettings {
    support::consumer_settings(brokers, "citypulse-store-test", 64, Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_stores_exactly_and_dead_letters_undecodable_messages() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_consumer").await;
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("posts.analyzed", 3, 1).expect("topic");
    mock.create_topic("posts.dlq", 1, 1).expect("dlq topic");
    let brokers = mock.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");

    // 300 posts; every 4th delivered twice; every 5th re-analysed later with other labels.
    let mut rng = Lcg(7);
    let now = chrono::Utc::now().timestamp() - 3 * 86_400;
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut later = Vec::new();
    let mut latest: HashMap<String, schema::AnalyzedPost> = HashMap::new();
    for i in 0..300 {
        let created = ts(now + rng.below(86_400) as i64);
        let (probs, topics, places) = random_labels(&mut rng);
        let p = post(SOURCES[i % 3], &format!("{i}"), "author", created, created, probs, &topics, &places, "v1");
        messages.push((p.key(), schema::encode(&p)));
        if i % 4 == 0 {
            messages.push((p.key(), schema::encode(&p)));
        }
        if i % 5 == 0 {
            let (p2, t2, _) = random_labels(&mut rng);
            let q = post(
                SOURCES[i % 3],
                &format!("{i}"),
                "author",
                created,
                created + chrono::Duration::seconds(99),
                p2,
                &t2,
                &places,
                "v2",
            );
            later.push((q.key(), schema::encode(&q)));
            latest.insert(q.key(), q);
        } else {
            latest.insert(p.key(), p);
        }
    }
    messages.extend(later);
    messages.insert(100, ("mastodon_social:bad".into(), b"{not json".to_vec()));
    messages.insert(200, ("mastodon_social:v9".into(), br#"{"schema_version":"9.0","id":"x"}"#.to_vec()));
    for (key, body) in &messages {
        producer
            .send(FutureRecord::to("posts.analyzed").key(key).payload(body), Duration::from_secs(10))
            .await
            .expect("produce");
    }
    let expected_posts = latest.len() as i64;
    let expected_score: f64 = latest.values().map(|p| f64::from(p.sentiment.score)).sum();

    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let shutdown = CancellationToken::new();
    let task = support::spawn_consumer(settings(&brokers), writer.clone(), shutdown.clone());
    let started = std::time::Instant::now();
    let total_sql = "SELECT toInt64(sum(posts)) FROM DB.trends_hourly WHERE topic = '*' AND place = '*'";
    let score_sql = "SELECT sum(score_sum) FROM DB.trends_daily WHERE topic = '*' AND place = '*'";
    loop {
        let n: i64 = t.scalar(total_sql).await;
        let score: f64 = t.scalar(score_sql).await;
        if n == expected_posts && score == expected_score {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "timed out: {n} of {expected_posts} posts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the last batch's offsets be stored before stopping.
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("all {} messages stored in {:?}", messages.len(), started.elapsed());
    shutdown.cancel();
    let stats = task.await.expect("join").expect("run");
    eprintln!("{stats:?}");
    assert_eq!(stats.messages, messages.len() as u64);
    // A re-analysis that shares a batch with its first delivery supersedes it there: counted as a
    // duplicate, not a replacement. Either way every message is accounted for once.
    assert_eq!((stats.inserted, stats.dlq), (300, 2));
    assert!(stats.replaced <= 60 && stats.replaced >= 30, "{stats:?}");
    assert_eq!(stats.inserted + stats.replaced + stats.duplicates + stats.stale + stats.dlq, stats.messages);
    let score: f64 = t.scalar(score_sql).await;
    assert_eq!(score, expected_score, "score sums exact");

    // The DLQ holds both undecodable messages with their reasons and positions.
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("dlq consumer");
    dlq.subscribe(&["posts.dlq"]).expect("subscribe");
    let mut records = Vec::new();
    while records.len() < 2 {
        let m =
            tokio::time::timeout(Duration::from_secs(20), dlq.recv()).await.expect("DLQ record in time").expect("recv");
        let r: schema::DlqRecord =
            schema::decode(m.payload().unwrap_or_default(), &schema::Limits::default()).expect("decode");
        records.push(r);
    }
    records.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(records[0].key.as_deref(), Some("mastodon_social:bad"));
    assert_eq!((records[0].stage, records[0].error_kind.as_str()), (schema::Stage::Store, "malformed"));
    assert_eq!(records[0].payload_redacted.as_deref(), Some("{not json"));
    assert_eq!(records[1].error_kind, "unsupported_version");
    assert!(records[1].reason.contains("9.0"), "{}", records[1].reason);

    // Offsets were committed: the same group, restarted, has nothing left to read. One new post is
    // the positive control: once it is stored the restarted consumer surely owns the partitions and
    // has read from the committed offsets on, and it must have read that post and nothing else.
    let shutdown = CancellationToken::new();
    let again = support::spawn_consumer(settings(&brokers), writer, shutdown.clone());
    let (probs, topics, places) = random_labels(&mut rng);
    let extra = post(SOURCES[0], "after-restart", "author", ts(now), ts(now), probs, &topics, &places, "v1");
    producer
        .send(
            FutureRecord::to("posts.analyzed").key(&extra.key()).payload(&schema::encode(&extra)),
            Duration::from_secs(10),
        )
        .await
        .expect("produce");
    let started = std::time::Instant::now();
    while t.scalar::<i64>(total_sql).await != expected_posts + 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "the restarted consumer never stored the new post");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    let stats = again.await.expect("join").expect("run");
    assert_eq!((stats.messages, stats.inserted), (1, 1), "restart read exactly the new post: {stats:?}");
    t.drop_db().await;
}

async fn produce(producer: &FutureProducer, posts: &[schema::AnalyzedPost]) {
    for p in posts {
        producer
            .send(FutureRecord::to("posts.analyzed").key(&p.key()).payload(&schema::encode(p)), Duration::from_secs(10))
            .await
            .expect("produce");
    }
}

async fn dlq_entries(brokers: &str) -> Vec<store::dlq::DlqEntry> {
    let brokers = brokers.to_owned();
    tokio::task::spawn_blocking(move || {
        let kafka = KafkaConfig { brokers, topic_dlq: "posts.dlq".into(), ..KafkaConfig::default() };
        store::dlq::read_all(&kafka, Duration::from_secs(10))
    })
    .await
    .expect("join")
    .expect("read dlq")
}

/// A database, a mock cluster holding posts.analyzed (2 partitions) and posts.dlq, a producer to
/// it and a writer to the database.
struct WithDlq {
    t: TestDb,
    _mock: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    brokers: String,
    producer: FutureProducer,
    writer: Writer,
}

async fn with_dlq(url: &str, prefix: &str) -> WithDlq {
    let t = TestDb::new(url, prefix).await;
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("posts.analyzed", 2, 1).expect("topic");
    mock.create_topic("posts.dlq", 1, 1).expect("dlq topic");
    let brokers = mock.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    WithDlq { t, _mock: mock, brokers, producer, writer }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_batch_lands_in_the_dlq_with_its_reason_and_replays_after_the_fix() {
    let Some(url) = common::clickhouse_url() else { return };
    let WithDlq { t, _mock, brokers, producer, writer } = with_dlq(&url, "cp_poison").await;
    let shutdown = CancellationToken::new();
    let task = support::spawn_consumer(settings(&brokers), writer.clone(), shutdown.clone());

    let created = ts(chrono::Utc::now().timestamp() - 86_400);
    let mk = |i: usize, probs, analyzed: i64| {
        post(
            "reddit_saigon",
            &format!("p{i}"),
            "a",
            created,
            created + chrono::Duration::seconds(analyzed),
            probs,
            &["traffic"],
            &[],
            "v1",
        )
    };
    let first: Vec<_> = (0..10).map(|i| mk(i, (40, 20, 4), 0)).collect();
    produce(&producer, &first).await;
    let total_sql = "SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = '*' AND place = '*'";
    let wait_for = |want: i64| {
        let t = &t;
        async move {
            let started = std::time::Instant::now();
            loop {
                let n: i64 = t.scalar(total_sql).await;
                if n == want {
                    return;
                }
                assert!(started.elapsed() < Duration::from_secs(60), "timed out at {n} posts, want {want}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(10).await;

    // Poison: a bad migration drops a column the writer inserts. The posts are not at fault but the
    // table cannot take them as they are: they go to the DLQ with ClickHouse's reason, for replay.
    t.client.query(&format!("ALTER TABLE {0}.posts DROP COLUMN url", t.db)).execute().await.expect("drop column");
    let second: Vec<_> = (10..15).map(|i| mk(i, (4, 20, 40), 0)).chain([mk(0, (2, 2, 60), 60)]).collect();
    produce(&producer, &second).await;
    let started = std::time::Instant::now();
    let entries = loop {
        let entries = dlq_entries(&brokers).await;
        if entries.len() >= 6 {
            break entries;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "DLQ has {} of 6", entries.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(entries.len(), 6);
    for e in &entries {
        let r = e.record.as_ref().expect("record");
        assert_eq!((r.stage, r.error_kind.as_str()), (schema::Stage::Store, "clickhouse_rejected"));
        assert!(r.reason.contains("url") && r.reason.contains("Code: "), "ClickHouse's reason kept: {}", r.reason);
    }
    eprintln!("DLQ reason: {}", entries[0].record.as_ref().map(|r| r.reason.as_str()).unwrap_or_default());

    // Fix, then replay: the 5 new posts are inserted and p0 moves to its new labels. Twice: idempotent.
    t.client
        .query(&format!("ALTER TABLE {0}.posts ADD COLUMN url String AFTER id", t.db))
        .execute()
        .await
        .expect("add back");
    let replay = store::dlq::replay(&entries, &writer, &CancellationToken::new()).await.expect("replay");
    assert!(replay.skipped.is_empty(), "{:?}", replay.skipped);
    assert_eq!((replay.write.inserted, replay.write.replaced), (5, 1), "{:?}", replay.write);
    let again = store::dlq::replay(&entries, &writer, &CancellationToken::new()).await.expect("replay");
    assert_eq!((again.write.inserted, again.write.replaced, again.write.duplicates), (0, 0, 6));
    wait_for(15).await;
    let pos: i64 = t
        .scalar("SELECT toInt64(sumIf(posts, sentiment = 'positive')) FROM DB.trends_daily WHERE topic = '*' AND place = '*'")
        .await;
    assert_eq!(pos, 6, "5 new positive posts and p0 re-analysed as positive");
    shutdown.cancel();
    let stats = task.await.expect("join").expect("run");
    assert_eq!((stats.inserted, stats.dlq), (10, 6), "{stats:?}");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_table_makes_the_writer_wait_and_say_why_not_dead_letter() {
    let Some(url) = common::clickhouse_url() else { return };
    let WithDlq { t, _mock, brokers, producer, writer } = with_dlq(&url, "cp_detach").await;
    let shutdown = CancellationToken::new();
    let log = Captured::default();
    let task = tokio::spawn(
        store::consume(
            settings(&brokers),
            writer.clone(),
            stagekit::StageHealth::detached(stagekit::StageName::Store),
            shutdown.clone(),
        )
        .with_subscriber(log.clone()),
    );
    let created = ts(chrono::Utc::now().timestamp() - 3_600);
    let mk =
        |i: usize| post("reddit_saigon", &format!("d{i}"), "a", created, created, (4, 20, 40), &["traffic"], &[], "v1");
    let total_sql = "SELECT toInt64(sum(posts)) FROM DB.trends_hourly WHERE topic = '*' AND place = '*'";
    produce(&producer, &(0..5).map(mk).collect::<Vec<_>>()).await;
    let db = &t;
    wait_for("the first posts stored", || async move { db.scalar::<i64>(total_sql).await == 5 }).await;

    // An operator detaches the table for maintenance while posts keep coming.
    t.client.query(&format!("DETACH TABLE {}.posts", t.db)).execute().await.expect("detach");
    produce(&producer, &(5..12).map(mk).collect::<Vec<_>>()).await;
    let waiting = "nothing is dropped";
    wait_for("the writer says it waits", || {
        let log = log.clone();
        async move { log.0.lock().expect("log").iter().any(|m| m.contains(waiting)) }
    })
    .await;
    assert!(dlq_entries(&brokers).await.is_empty(), "no post is at fault: none may be dead-lettered");
    assert!(writer.health().failing_for().is_some(), "the writer reports ClickHouse failing while it waits");

    t.client.query(&format!("ATTACH TABLE {}.posts", t.db)).execute().await.expect("attach");
    wait_for("every post stored after the re-attach", || async move { db.scalar::<i64>(total_sql).await == 12 }).await;
    assert!(dlq_entries(&brokers).await.is_empty());
    shutdown.cancel();
    let stats = task.await.expect("join").expect("run");
    assert_eq!((stats.inserted, stats.dlq), (12, 0), "{stats:?}");
    t.drop_db().await;
}

/// The messages one consumer logged: the events of its own task only, through a subscriber
/// attached to that task (rebalance callbacks run inside its `recv()`). Deliberately not a
/// tracing-subscriber registry: spans cross between this task and others (spawned tasks, the
/// global subscriber), and a registry panics when asked to close a span it never saw. This one
/// keeps no spans at all.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Captured {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().expect("log").push(message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Captured {
    /// Whether a logged event contains `first`, and a later one `then`.
    fn logged_in_order(&self, first: &str, then: &str) -> bool {
        let log = self.0.lock().expect("log");
        log.iter().position(|m| m.contains(first)).is_some_and(|i| log[i + 1..].iter().any(|m| m.contains(then)))
    }
}

/// The group's committed offset and the high watermark of each partition of `posts.analyzed`.
async fn committed_and_end(brokers: &str, group: &str, partitions: i32) -> Vec<(i64, i64)> {
    let (brokers, group) = (brokers.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        // Not subscribed: it only asks the coordinator, it never joins the group.
        let c: rdkafka::consumer::BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().expect("reader");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition("posts.analyzed", p);
        }
        let committed = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
        (0..partitions)
            .map(|p| {
                let at = committed.find_partition("posts.analyzed", p).and_then(|e| e.offset().to_raw()).unwrap_or(-1);
                let (_, high) = c.fetch_watermarks("posts.analyzed", p, Duration::from_secs(10)).expect("watermarks");
                (at, high)
            })
            .collect()
    })
    .await
    .expect("join")
}

/// Polls `check` every 200 ms until it holds; fails after a minute with `what`.
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_mid_stream_keeps_the_trend_tables_exact() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_rebalance").await;
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("posts.analyzed", 4, 1).expect("topic");
    mock.create_topic("posts.dlq", 1, 1).expect("dlq topic");
    let brokers = mock.bootstrap_servers();
    let (all, latest) = stream(400, 99);
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let small = ConsumerSettings { batch_max_rows: 16, batch_period: Duration::from_millis(50), ..settings(&brokers) };
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
    let mut chunks: std::collections::VecDeque<&[schema::AnalyzedPost]> = all.chunks(20).collect();
    let total_sql = "SELECT toInt64(sum(posts)) FROM DB.trends_hourly WHERE topic = '*' AND place = '*'";
    // Each phase waits for what it needs (not for a time), so a slow machine only makes it longer.
    // A alone: it is consuming once its first posts are stored.
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a_log = Captured::default();
    let a = tokio::spawn(
        store::consume(
            small.clone(),
            writer.clone(),
            stagekit::StageHealth::detached(stagekit::StageName::Store),
            stop_a.clone(),
        )
        .with_subscriber(a_log.clone()),
    );
    produce(&producer, chunks.pop_front().expect("chunk")).await;
    let db = &t;
    wait_for("A stored posts", || async move { db.scalar::<i64>(total_sql).await > 0 }).await;
    // B joins while messages flow: a chunk every 200 ms until A has given its partitions up (B's
    // join forces that revocation) and got its share back, keeping a third of the stream for later.
    let b = support::spawn_consumer(small, writer.clone(), stop_b.clone());
    let reserve = chunks.len() / 3;
    let started = std::time::Instant::now();
    while !a_log.logged_in_order("partitions revoked", "message=partitions assigned parts=[") {
        assert!(started.elapsed() < Duration::from_secs(60), "B's join never rebalanced A: {:?}", a_log.0);
        if chunks.len() > reserve {
            produce(&producer, chunks.pop_front().expect("chunk")).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both own partitions now. A leaves while messages flow: it is stopped right after a chunk
    // went out, and more follow while it drains. The last chunk is sent once A is gone, so B
    // surely takes part.
    let last = chunks.pop_back().expect("last chunk");
    produce(&producer, chunks.pop_front().expect("chunk")).await;
    stop_a.cancel();
    for chunk in chunks.drain(..) {
        produce(&producer, chunk).await;
    }
    let stats_a = a.await.expect("join").expect("run a");
    produce(&producer, last).await;
    let expected = expected_cells(&latest, true);
    let mut cells_matched = false;
    let started = std::time::Instant::now();
    loop {
        if !cells_matched {
            cells_matched = actual_cells(&t, true).await == expected;
        }
        // Everything produced was read and its offset committed: the group lost nothing and B has
        // caught up with the trailing redeliveries too.
        let offsets = committed_and_end(&brokers, &small_group(), 4).await;
        if cells_matched && offsets.iter().all(|(at, end)| at == end) {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            stop_b.cancel();
            let stats_b = b.await.expect("join").expect("run b");
            let n: i64 = t.scalar(total_sql).await;
            let live: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts FINAL WHERE sign = 1").await;
            panic!(
                "cells matched: {cells_matched}; offsets (committed, end) {offsets:?}; {n} posts in trends, {live} \
                 live, want {}; A {stats_a:?} B {stats_b:?}",
                latest.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop_b.cancel();
    let stats_b = b.await.expect("join").expect("run b");
    eprintln!("produced {}; A {stats_a:?}; B {stats_b:?}", all.len());
    assert!(stats_a.messages > 0 && stats_b.messages > 0, "both consumers took part");
    // Every offset is committed, so A and B read each message at least once between them.
    assert!(stats_a.messages + stats_b.messages >= all.len() as u64, "A {stats_a:?} B {stats_b:?}");
    assert_eq!(stats_a.inserted + stats_b.inserted, latest.len() as u64, "each post inserted once");
    assert_eq!(actual_cells(&t, true).await, expected);
    assert_eq!(actual_cells(&t, false).await, expected_cells(&latest, false));
    t.drop_db().await;
}

/// The group of [`settings`], which the rebalance test's consumers share.
fn small_group() -> String {
    settings("").kafka.store_group
}
