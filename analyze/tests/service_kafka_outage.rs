//! Issue 28, guarantee 6 (analyzer half): the analyze service through a Kafka outage. The service
//! runs against librdkafka's in-process MockCluster; posts are fed before, during and after a few
//! seconds in which the cluster's only broker is down. The service must neither exit nor hang: once
//! the broker is back, every input post is in posts.analyzed (at least once), the group's committed
//! offsets on posts.raw reach the end, and on shutdown it drains and returns Ok.
//!
//! The outage is shorter than the service's delivery timeout (`delivery_timeout_ms`, 30 s by
//! default), so librdkafka's own retries carry the analysed posts across it; a produce that fails
//! outright is analyze/tests/service_produce_failure.rs's subject.
//!
//! The model is the real tokenizer and heads with a fake backend (hidden states from the token ids):
//! what is under test is the Kafka side, not the labels.

mod common;

use analyze::encoder::Encoder;
use analyze::tokenize::PostTokenizer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::{AnalyzedPost, Limits, Post, SourceId};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const RAW: &str = "posts.raw";
const ANALYZED: &str = "posts.analyzed";
const GROUP: &str = "outage-analyze";
const RAW_PARTITIONS: i32 = 2;
/// The mock cluster's one broker (ids start at 1).
const BROKER: i32 = 1;
/// Long enough for every client to notice (connections refused, requests failing), well below the
/// service's session timeout (10 s) and delivery timeout (30 s): the outage alone forces neither a
/// rebalance nor a failed delivery.
const OUTAGE: Duration = Duration::from_secs(4);

fn config(brokers: &str) -> schema::config::Config {
    // RAW and ANALYZED are the "posts" prefix's topics.
    common::service_config(brokers, "posts", &[("CITYPULSE__KAFKA__ANALYZE_GROUP", GROUP)])
}

fn posts(range: std::ops::Range<usize>) -> Vec<Post> {
    range
        .map(|i| Post {
            id: format!("o{i}"),
            source: SourceId::new("replay").expect("source"),
            url: None,
            author: format!("{i:032x}"),
            text: format!("Đường Nguyễn Hữu Cảnh ngập nặng sau cơn mưa chiều nay, lần thứ {i} trong tháng"),
            lang: None,
            created_at: chrono::Utc::now(),
            fetched_at: chrono::Utc::now(),
            places: vec![],
            engagement: Default::default(),
            created_at_estimated: false,
        })
        .collect()
}

/// Queues every post at once (`send_result` does not wait), then waits for each acknowledgement:
/// posts fed while the broker is down are all in the producer's queue, not just the first.
async fn produce(producer: &FutureProducer, posts: &[Post]) {
    let mut acks = Vec::with_capacity(posts.len());
    for p in posts {
        let (key, payload) = (p.key(), schema::encode(p));
        let record = FutureRecord::to(RAW).key(&key).payload(&payload);
        acks.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for ack in acks {
        ack.await.expect("delivery future").expect("produce");
    }
}

/// Polls `cond` until it holds; panics with `what` after `limit`, or at once, with the service's
/// own result, if the service stops first: through an outage it must keep running until shutdown.
async fn wait_while_running<F, Fut>(
    what: &str,
    limit: Duration,
    service: &mut JoinHandle<Result<analyze::AnalyzeStats, analyze::service::ServiceError>>,
    mut cond: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !cond().await {
        if service.is_finished() {
            panic!("the service stopped before shutdown, waiting for {what}: {:?}", service.await);
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Catches: the consume loop giving up on a Kafka error (in `service::consume`, `return` instead of
/// `continue` after "consume error"): with the broker down, `recv()` reports transport failures,
/// the service drains and returns Ok in the middle of the stream, and the posts fed during and
/// after the outage are never analysed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analyzer_rides_out_a_kafka_outage_and_analyses_every_post() {
    if !common::model_available() {
        return;
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic(RAW, RAW_PARTITIONS, 1).expect("topic");
        cluster.create_topic(ANALYZED, 1, 1).expect("topic");
        cluster.create_topic("posts.dlq", 1, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let config = config(&brokers);
        // Idempotent: a produce request cut off by the outage and retried is not appended twice, so
        // the topic holds each post once and the counts below are exact.
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let before = posts(0..40);
        let during = posts(40..70);
        let after = posts(70..100);

        produce(&producer, &before).await;
        let opts = analyze::ModelOptions::from_config(&config.services.analyze);
        let tokenizer =
            PostTokenizer::load(&opts.model_dir.join("tokenizer.json"), opts.max_seq_tokens).expect("tokenizer");
        let encoder = Encoder::new(tokenizer, vec![Box::new(common::FakeBackend)], 128);
        let classifier = analyze::Classifier::with_encoder(encoder, &opts, &config.topics).expect("classifier");
        let shutdown = CancellationToken::new();
        let mut service = {
            let (config, shutdown) = (config.clone(), shutdown.clone());
            tokio::spawn(async move { common::run_stage(&config, classifier, shutdown).await })
        };
        // Mid-stream: the service has joined its group and published its first posts.
        wait_while_running("the first analysed posts", Duration::from_secs(20), &mut service, || async {
            common::topic_len(&brokers, ANALYZED, 1).await > 0
        })
        .await;

        cluster.broker_down(BROKER).expect("broker down");
        let down_at = Instant::now();
        // Fed while Kafka is down: the test producer queues them and delivers once it is back.
        let feeding = {
            let (producer, during) = (producer.clone(), during.clone());
            tokio::spawn(async move { produce(&producer, &during).await })
        };
        tokio::time::sleep(OUTAGE).await;
        cluster.broker_up(BROKER).expect("broker up");
        eprintln!("broker down for {:?}", down_at.elapsed());
        feeding.await.expect("produced during the outage");
        produce(&producer, &after).await;

        // Everything handled: the group's committed offsets are at the end of posts.raw.
        let last = std::cell::RefCell::new(None);
        wait_while_running("every posts.raw offset committed", Duration::from_secs(25), &mut service, || async {
            let committed = testkit::kafka::committed(&brokers, GROUP, RAW, RAW_PARTITIONS).await;
            let ends = testkit::kafka::ends(&brokers, RAW, RAW_PARTITIONS).await;
            let done = committed == ends;
            *last.borrow_mut() = Some((committed, ends));
            done
        })
        .await;
        eprintln!("committed, ends: {:?}", last.borrow());

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), service)
            .await
            .expect("service drained in time")
            .expect("join")
            .expect("run");

        let input: BTreeSet<String> = before.iter().chain(&during).chain(&after).map(Post::key).collect();
        let produced = common::topic_len(&brokers, ANALYZED, 1).await;
        let analyzed = common::read_all(&brokers, ANALYZED, produced, Duration::from_secs(20)).await;
        assert_eq!(analyzed.len(), produced, "read every message of {ANALYZED}");
        let limits = Limits::default();
        let keys: BTreeSet<String> = analyzed
            .iter()
            .map(|bytes| schema::decode::<AnalyzedPost>(bytes, &limits).expect("analysed post").key())
            .collect();
        eprintln!("{} input posts, {produced} analysed messages, {} distinct keys", input.len(), keys.len());
        assert_eq!(keys, input, "every input post analysed, and nothing else");
        assert_eq!(common::topic_len(&brokers, "posts.dlq", 1).await, 0, "nothing dead-lettered");
    })
    .await
    .expect("finished within 60 s");
}
