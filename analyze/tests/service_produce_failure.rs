//! Issue 28, guarantee 3: the analyzer stores a post's offset only after Kafka acknowledged its
//! output. The analyze service runs against librdkafka's in-process MockCluster while every
//! ProduceRequest is answered with TOPIC_AUTHORIZATION_FAILED, so each analysed post and each DLQ
//! record fails delivery; after the service reported those failures and drained, the group's
//! committed offsets on posts.raw must not have moved. With the fault cleared, a restart in the same
//! group analyses every post again and only then commits past them.
//!
//! The injected error is one librdkafka treats as permanent (not retried, the message fails at
//! once; the idempotent producer bumps its epoch and goes on), so the failure shows within
//! milliseconds instead of after `message.timeout.ms`; the service then retries each message with
//! backoff (stagekit's one policy) until shutdown, and its health names the stage meanwhile. The mock's error stack is per API key and
//! cluster-wide: posts.raw is filled before the fault is injected.
//!
//! The model is the real tokenizer and heads with a fake backend (hidden states from the token ids):
//! what is under test is the output side, not the labels. The service's failure reports are read
//! from its log lines through a process-wide tracing subscriber (the service logs from tokio worker
//! threads), which is why this file holds exactly one test.

mod common;

use analyze::encoder::Encoder;
use analyze::tokenize::PostTokenizer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;
use schema::{AnalyzedPost, DlqRecord, Limits, Post, SourceId};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const GROUP: &str = "produce-failure-analyze";
/// Good posts, all in partition 0 of posts.raw.
const GOOD: usize = 6;
/// The malformed message's key; it is alone in partition 1, so that a wrongly stored DLQ offset
/// is not hidden behind partition 0's failed posts (only the lowest in-flight offset is stored).
const BAD_KEY: &str = "replay:bad";

fn config(brokers: &str) -> schema::config::Config {
    // The delivery timeout is a safety net only: the injected error fails a delivery at once.
    let overrides = [("CITYPULSE__KAFKA__ANALYZE_GROUP", GROUP), ("CITYPULSE__KAFKA__DELIVERY_TIMEOUT_MS", "5000")];
    common::service_config(brokers, "posts", &overrides)
}

fn post(i: usize) -> Post {
    Post {
        id: format!("p{i:03}"),
        source: SourceId::new("replay").expect("source"),
        url: None,
        author: format!("{i:032x}"),
        text: format!("Đường số {i} lại ngập sau mưa, kẹt xe cả buổi sáng"),
        lang: None,
        created_at: chrono::Utc::now(),
        fetched_at: chrono::Utc::now(),
        places: vec![],
        engagement: Default::default(),
        created_at_estimated: false,
    }
}

fn start(
    config: &schema::config::Config,
    health: stagekit::StageHealth,
    shutdown: CancellationToken,
) -> JoinHandle<Result<analyze::AnalyzeStats, analyze::service::ServiceError>> {
    let config = config.clone();
    tokio::spawn(async move {
        let opts = analyze::ModelOptions::from_config(&config.services.analyze);
        let tokenizer =
            PostTokenizer::load(&opts.model_dir.join("tokenizer.json"), opts.max_seq_tokens).expect("tokenizer");
        let encoder = Encoder::new(tokenizer, vec![Box::new(common::FakeBackend)], 128);
        let classifier = analyze::Classifier::with_encoder(encoder, &opts, &config.topics).expect("classifier");
        common::run_stage_reporting(&config, classifier, health, shutdown).await
    })
}

async fn stop(
    shutdown: CancellationToken,
    service: JoinHandle<Result<analyze::AnalyzeStats, analyze::service::ServiceError>>,
) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .expect("service drained in time")
        .expect("join")
        .expect("run");
}

/// The analyze group's committed offsets of posts.raw partitions 0 and 1 (`None`: nothing committed).
async fn committed(brokers: &str) -> [Option<i64>; 2] {
    let got = testkit::kafka::committed(brokers, GROUP, "posts.raw", 2).await;
    [got[&0], got[&1]]
}

/// Catches, each on its own (all three tried, each fails this test at the committed-offset checks
/// after the failing run, with the message named):
/// - `Output::write` calling `finish` whatever `publish` returned (`if ok` dropped): partition 0 is
///   committed past the good posts whose analysed output was never acknowledged;
/// - `Output::dead_letter` calling `finish` whatever `send_dlq` returned: partition 1 is committed
///   past the malformed message whose DLQ record was never written;
/// - the consume loop storing the offset when a message is received (`out.finish(partition,
///   offset)` right after `start`): both partitions are committed before anything was produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_stay_put_while_produces_fail_and_every_post_comes_out_after_the_fault() {
    if !common::model_available() {
        return;
    }
    let lines = common::capture_logs();

    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("posts.raw", 2, 1).expect("topic");
    cluster.create_topic("posts.analyzed", 1, 1).expect("topic");
    cluster.create_topic("posts.dlq", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let config = config(&brokers);

    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
    let mut expected = BTreeSet::new();
    for i in 0..GOOD {
        let p = post(i);
        let (key, payload) = (p.key(), schema::encode(&p));
        let record = FutureRecord::to("posts.raw").partition(0).key(&key).payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.expect("produce a post");
        expected.insert(key);
    }
    let record = FutureRecord::to("posts.raw").partition(1).key(BAD_KEY).payload(&b"{not json"[..]);
    producer.send(record, Duration::from_secs(10)).await.expect("produce the malformed message");
    drop(producer);

    // Far more errors than the run makes ProduceRequests (one per post at most): none gets through.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 10_000],
    );
    let shutdown = CancellationToken::new();
    let health = stagekit::Health::default();
    let service = start(&config, health.stage(stagekit::StageName::Analyze), shutdown.clone());
    // The service says so for each delivery that failed: every good post and the DLQ record.
    let failures = |needle: &str| lines.lock().expect("log lines").iter().filter(|l| l.contains(needle)).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while failures("producing the analysed post failed") < GOOD || failures("writing to the DLQ failed") < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the service never reported the failed produces");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And /healthz names the stage and why while the fault lasts.
    let (healthy, report) = health.report();
    assert!(!healthy && report["failing"] == serde_json::json!(["analyze"]), "{report}");
    let reason = report["stages"]["analyze"]["kafka"].as_str().unwrap_or_default();
    assert!(reason.starts_with("publishing to posts.") && reason.contains("authorization"), "{report}");
    // The drain ends with a synchronous commit of whatever was stored: a wrongly stored offset
    // reaches the broker here at the latest.
    stop(shutdown, service).await;
    // Positive control: the fault really kept every output out of Kafka.
    assert_eq!(common::topic_len(&brokers, "posts.analyzed", 1).await, 0, "an analysed post got through the fault");
    assert_eq!(common::topic_len(&brokers, "posts.dlq", 1).await, 0, "a DLQ record got through the fault");
    // On a failure, what the service said about partitions and commits.
    let log = || -> Vec<String> {
        let lines = lines.lock().expect("log lines");
        lines.iter().filter(|l| !l.starts_with("TRACE") && !l.starts_with("DEBUG")).cloned().collect()
    };
    let [good, bad] = committed(&brokers).await;
    assert!(
        good.is_none_or(|o| o == 0),
        "posts.raw[0] committed at {good:?} although no analysed post was acked; log: {:#?}",
        log()
    );
    assert!(
        bad.is_none_or(|o| o == 0),
        "posts.raw[1] committed at {bad:?} although the DLQ record was not acked; log: {:#?}",
        log()
    );

    // The fault cleared, a restart in the same group gets everything again.
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let shutdown = CancellationToken::new();
    let health = stagekit::Health::default();
    let service = start(&config, health.stage(stagekit::StageName::Analyze), shutdown.clone());
    let analyzed = common::read_all(&brokers, "posts.analyzed", GOOD, Duration::from_secs(15)).await;
    let dlq = common::read_all(&brokers, "posts.dlq", 1, Duration::from_secs(10)).await;
    assert!(health.report().0, "healthy once Kafka takes every message: {}", health.report().1);
    stop(shutdown, service).await;
    let limits = Limits::default();
    let keys: BTreeSet<String> =
        analyzed.iter().map(|b| schema::decode::<AnalyzedPost>(b, &limits).expect("analysed post").key()).collect();
    assert_eq!(keys, expected, "every post analysed after the restart");
    assert_eq!(dlq.len(), 1, "the malformed message in the DLQ after the restart");
    let record: DlqRecord = schema::decode(&dlq[0], &limits).expect("dlq record");
    assert_eq!((record.key.as_deref(), record.partition, record.offset), (Some(BAD_KEY), 1, 0));
    // Positive control for the reading of committed offsets: once acked, they are committed.
    assert_eq!(
        committed(&brokers).await,
        [Some(GOOD as i64), Some(1)],
        "committed after the acked restart; log: {:#?}",
        log()
    );
}
