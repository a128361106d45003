//! The analyze service against librdkafka's in-process MockCluster and the real model: every post in
//! posts.raw comes out analysed in posts.analyzed (redacted, no raw text), bad input lands in the DLQ
//! with its reason, and a restart in the same group resumes after the committed offsets.

mod common;

use analyze::backend::{BackendError, PaddedBatch};
use analyze::encoder::Encoder;
use analyze::tokenize::PostTokenizer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::{AnalyzedPost, DlqRecord, Limits, Post, SourceId};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn config(brokers: &str) -> schema::config::Config {
    config_with_topics(brokers, "posts")
}

/// The shipped config pointed at `brokers`, with topics `<prefix>.raw|analyzed|dlq`.
fn config_with_topics(brokers: &str, prefix: &str) -> schema::config::Config {
    common::service_config(brokers, prefix, &[])
}

fn post(i: usize) -> Post {
    let texts = [
        "Đường Nguyễn Hữu Cảnh lại ngập sau mưa, gọi 0903 123 456 mà không ai nghe",
        "Metro số 1 chạy êm, đi làm nhanh hơn hẳn",
        "ket xe qua troi o nga tu Hang Xanh",
        "Air quality in District 1 is terrible today",
    ];
    Post {
        id: format!("p{i:03}"),
        source: SourceId::new("replay").unwrap(),
        url: None,
        author: format!("{i:032x}"),
        text: texts[i % texts.len()].to_owned(),
        lang: None,
        created_at: chrono::Utc::now(),
        fetched_at: chrono::Utc::now(),
        places: vec![],
        engagement: Default::default(),
        created_at_estimated: false,
    }
}

async fn produce(brokers: &str, topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    producer.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(10)).await.unwrap();
}

/// A MockCluster with posts.raw and posts.analyzed of `partitions` partitions and a one-partition
/// posts.dlq; keep the cluster alive as long as its brokers are used.
fn mock_cluster(partitions: i32) -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, String) {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("posts.raw", partitions, 1).unwrap();
    cluster.create_topic("posts.analyzed", partitions, 1).unwrap();
    cluster.create_topic("posts.dlq", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    (cluster, brokers)
}

/// Produces posts `range` (see [`post`]) into `topic`; returns their keys.
async fn produce_posts(brokers: &str, topic: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for i in range {
        let p = post(i);
        produce(brokers, topic, &p.key(), &schema::encode(&p)).await;
        keys.insert(p.key());
    }
    keys
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_analysed_bad_input_to_dlq_and_restart_resumes() {
    if !common::model_available() {
        return;
    }
    let (_cluster, brokers) = mock_cluster(3);
    let config = config(&brokers);
    let n = 24;
    produce_posts(&brokers, "posts.raw", 0..n).await;
    produce(&brokers, "posts.raw", "replay:bad1", b"{not json").await;
    let mut future_major = serde_json::to_value(post(99)).unwrap();
    future_major["schema_version"] = "2.0".into();
    produce(&brokers, "posts.raw", "replay:bad2", future_major.to_string().as_bytes()).await;

    let run_once = |shutdown: CancellationToken| {
        let config = config.clone();
        tokio::spawn(async move {
            let opts = analyze::ModelOptions::from_config(&config.services.analyze);
            let classifier = analyze::Classifier::load(&opts, &config.topics).unwrap();
            common::run_stage(&config, classifier, shutdown).await
        })
    };
    let shutdown = CancellationToken::new();
    let service = run_once(shutdown.clone());
    let analyzed = common::read_all(&brokers, "posts.analyzed", n, Duration::from_secs(120)).await;
    let dlq = common::read_all(&brokers, "posts.dlq", 2, Duration::from_secs(30)).await;
    shutdown.cancel();
    service.await.unwrap().unwrap();

    let limits = Limits::default();
    let posts: Vec<AnalyzedPost> = analyzed.iter().map(|b| schema::decode(b, &limits).unwrap()).collect();
    let keys: BTreeSet<String> = posts.iter().map(AnalyzedPost::key).collect();
    assert_eq!(keys.len(), n, "every post analysed");
    for (bytes, p) in analyzed.iter().zip(&posts) {
        let raw = String::from_utf8_lossy(bytes);
        assert!(!raw.contains("0903 123 456") && !raw.contains("\"text\""), "raw text leaked: {raw}");
        assert!(!p.topics.is_empty() && (-1.0..=1.0).contains(&p.sentiment.score));
        let index = p.search.clone().and_then(schema::WireSearchIndex::into_current);
        assert_eq!(index, Some(schema::terms::search_index(&p.text_redacted)), "the store gets the search index made");
    }
    let records: Vec<DlqRecord> = dlq.iter().map(|b| schema::decode(b, &limits).unwrap()).collect();
    let kinds: BTreeSet<&str> = records.iter().map(|r| r.error_kind.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["malformed", "unsupported_version"]));
    assert!(records.iter().all(|r| r.topic == "posts.raw" && r.stage == schema::Stage::Analyze));

    // A restart in the same group starts after the committed offsets: only the new post comes out.
    let p = post(100);
    produce(&brokers, "posts.raw", &p.key(), &schema::encode(&p)).await;
    let shutdown = CancellationToken::new();
    let service = run_once(shutdown.clone());
    let again = common::read_all(&brokers, "posts.analyzed", n + 1, Duration::from_secs(90)).await;
    assert_eq!(again.len(), n + 1, "the new post analysed in time");
    shutdown.cancel();
    service.await.unwrap().unwrap();
    // After the drain, the whole topic: `read_all` above stops at what it wants, so a post
    // analysed twice would only show here.
    let all = common::read_all(
        &brokers,
        "posts.analyzed",
        common::topic_len(&brokers, "posts.analyzed", 3).await,
        Duration::from_secs(60),
    )
    .await;
    let keys: Vec<String> = all.iter().map(|b| schema::decode::<AnalyzedPost>(b, &limits).unwrap().key()).collect();
    assert_eq!(keys.len(), n + 1, "old posts were not analysed again: {keys:?}");
    assert!(keys.contains(&p.key()));
}

/// Two instances share the partitions, each writing its own output topic so that the split shows;
/// then one stops without its drain and the other takes its partitions over: every post still
/// comes out, duplicates allowed.
///
/// What "stops" means here, precisely: the instance's task is aborted. Its consume loop ends at
/// once, but the tasks and model threads it spawned finish the posts already taken, and its
/// consumer, dropped last, leaves the group (LeaveGroup) — so the survivor takes over at once,
/// without waiting out a session timeout. It is not a crash (SIGKILL: no finishing, no leaving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_work_and_one_aborted_mid_stream_loses_nothing() {
    if !common::model_available() {
        return;
    }
    let (cluster, brokers) = mock_cluster(4);
    cluster.create_topic("posts.analyzed.a", 1, 1).unwrap();
    cluster.create_topic("posts.analyzed.b", 1, 1).unwrap();
    let start = |output: &str, shutdown: CancellationToken| {
        let config = common::service_config(&brokers, "posts", &[("CITYPULSE__KAFKA__TOPIC_ANALYZED", output)]);
        tokio::spawn(async move {
            let opts = analyze::ModelOptions::from_config(&config.services.analyze);
            let classifier = analyze::Classifier::load(&opts, &config.topics).unwrap();
            common::run_stage(&config, classifier, shutdown).await
        })
    };
    let mut expected = produce_posts(&brokers, "posts.raw", 0..40).await;
    let a = start("posts.analyzed.a", CancellationToken::new());
    let b_shutdown = CancellationToken::new();
    let b = start("posts.analyzed.b", b_shutdown.clone());
    // The split: a trickle of posts until both instances have written some, however long the
    // model loads and the group join take here.
    let mut next = 40;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while common::topic_len(&brokers, "posts.analyzed.a", 1).await == 0
        || common::topic_len(&brokers, "posts.analyzed.b", 1).await == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "the two instances never both analysed posts");
        expected.extend(produce_posts(&brokers, "posts.raw", next..next + 4).await);
        next += 4;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    a.abort();
    expected.extend(produce_posts(&brokers, "posts.raw", next..next + 40).await);
    let limits = Limits::default();
    let keys = |topic: &'static str| {
        let brokers = brokers.clone();
        async move {
            let n = common::topic_len(&brokers, topic, 1).await;
            let all = common::read_all(&brokers, topic, n, Duration::from_secs(60)).await;
            all.iter().map(|b| schema::decode::<AnalyzedPost>(b, &limits).unwrap().key()).collect::<BTreeSet<String>>()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut seen = BTreeSet::new();
    while !expected.is_subset(&seen) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        seen = keys("posts.analyzed.a").await.into_iter().chain(keys("posts.analyzed.b").await).collect();
    }
    b_shutdown.cancel();
    b.await.unwrap().unwrap();
    let missing: Vec<&String> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "lost after the abort: {missing:?}");
    assert_eq!(seen, expected, "nothing but the produced posts");
}

/// Two onnx model workers (one session and thread each) share the batches: every post comes out
/// exactly once and the service drains and stops.
#[cfg(feature = "onnx")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_model_workers_analyse_every_post_once() {
    if !common::model_available() {
        return;
    }
    let backend = [("CITYPULSE__ANALYZE__BACKEND", "onnx"), ("CITYPULSE__ANALYZE__PRECISION", "int8")];
    two_workers_analyse_every_post_once(&backend, "onnx-int8").await;
}

/// The analyze service on rust-bert over libtorch (`make test-torch`): two model workers, each a
/// model of its own on libtorch's process-wide thread pools, every post out exactly once.
#[cfg(feature = "torch")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torch_backend_analyses_every_post_once() {
    if !common::model_available() {
        return;
    }
    two_workers_analyse_every_post_once(&[("CITYPULSE__ANALYZE__BACKEND", "torch")], "torch").await;
}

/// Runs the service on the `backend` settings with two model workers on 60 posts: all come out,
/// the drain stops it, none twice. `name` is the backend's name as the classifier gives it.
#[cfg(any(feature = "onnx", feature = "torch"))]
async fn two_workers_analyse_every_post_once(backend: &[(&str, &str)], name: &'static str) {
    let mut overrides = vec![
        ("CITYPULSE__ANALYZE__THREADS", "2"),
        ("CITYPULSE__ANALYZE__WORKERS", "2"),
        // Small batches, so both workers get several.
        ("CITYPULSE__ANALYZE__BATCH_MAX_TOKENS", "128"),
    ];
    overrides.extend_from_slice(backend);
    let (_cluster, brokers) = mock_cluster(2);
    let config = common::service_config(&brokers, "posts", &overrides);
    let expected = produce_posts(&brokers, "posts.raw", 0..60).await;
    let shutdown = CancellationToken::new();
    let service = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::spawn(async move {
            let opts = analyze::ModelOptions::from_config(&config.services.analyze);
            let classifier = analyze::Classifier::load(&opts, &config.topics).unwrap();
            assert_eq!((classifier.workers(), classifier.backend_name().as_str()), (2, name));
            common::run_stage(&config, classifier, shutdown).await
        })
    };
    let first = common::read_all(&brokers, "posts.analyzed", expected.len(), Duration::from_secs(90)).await;
    assert_eq!(first.len(), expected.len(), "all analysed in time");
    shutdown.cancel();
    service.await.unwrap().unwrap();
    // Everything in the topic after the drain: a duplicate would show here.
    let analyzed = common::read_all(
        &brokers,
        "posts.analyzed",
        common::topic_len(&brokers, "posts.analyzed", 2).await,
        Duration::from_secs(60),
    )
    .await;
    let limits = Limits::default();
    let keys: Vec<String> =
        analyzed.iter().map(|b| schema::decode::<AnalyzedPost>(b, &limits).unwrap().key()).collect();
    assert_eq!(keys.len(), expected.len(), "each post once");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), expected);
}

/// Hidden states that depend only on the token ids; panics once `armed`. `delay` slows each pass.
struct FakeBackend {
    armed: Arc<AtomicBool>,
    delay: Duration,
}

impl analyze::backend::Backend for FakeBackend {
    fn name(&self) -> String {
        "fake".into()
    }

    fn hidden_states(&mut self, batch: &PaddedBatch) -> Result<Vec<f32>, BackendError> {
        assert!(!self.armed.load(Ordering::SeqCst), "fake model failure");
        std::thread::sleep(self.delay);
        Ok(common::fake_hidden_states(batch))
    }
}

/// One of two model workers panics: the service stops by itself (drain, then an error) instead of
/// running on with the other while the failed batch's offsets stay stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_thread_that_panics_stops_the_service() {
    if !common::model_available() {
        return;
    }
    let (_cluster, brokers) = mock_cluster(2);
    let config = config(&brokers);
    let opts = analyze::ModelOptions::from_config(&config.services.analyze);
    let tokenizer = PostTokenizer::load(&opts.model_dir.join("tokenizer.json"), opts.max_seq_tokens).unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let failing = FakeBackend { armed: armed.clone(), delay: Duration::ZERO };
    // Slow, so the failing worker surely gets a batch while this one is busy.
    let steady = FakeBackend { armed: Arc::new(AtomicBool::new(false)), delay: Duration::from_millis(300) };
    let encoder = Encoder::new(tokenizer, vec![Box::new(failing), Box::new(steady)], 128);
    let classifier = analyze::Classifier::with_encoder(encoder, &opts, &config.topics).unwrap();
    armed.store(true, Ordering::SeqCst);
    produce_posts(&brokers, "posts.raw", 0..40).await;
    let never_cancelled = CancellationToken::new();
    let service = tokio::spawn(async move { common::run_stage(&config, classifier, never_cancelled).await });
    let result = tokio::time::timeout(Duration::from_secs(90), service).await.expect("the service stopped by itself");
    let err = result.unwrap().expect_err("a panicked model thread is an error");
    assert!(err.to_string().contains("1 model thread(s) panicked"), "{err}");
}

/// End to end against the tansu broker process: posts in, analysed posts out, bad input in the DLQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyses_through_tansu() {
    if !common::model_available() {
        return;
    }
    let Some(brokers) = common::kafka_brokers() else { return };
    let prefix = format!("analyze{}", rand_suffix() % 1_000_000_000);
    let config = config_with_topics(&brokers, &prefix);
    let admin: rdkafka::admin::AdminClient<_> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let topics: Vec<String> = ["raw", "analyzed", "dlq"].iter().map(|t| format!("{prefix}.{t}")).collect();
    let new: Vec<_> = topics
        .iter()
        .map(|t| rdkafka::admin::NewTopic::new(t, 2, rdkafka::admin::TopicReplication::Fixed(1)))
        .collect();
    for r in admin.create_topics(&new, &rdkafka::admin::AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
    let expected = produce_posts(&brokers, &topics[0], 0..20).await;
    produce(&brokers, &topics[0], "replay:bad", b"\xff\xfe not json").await;
    let shutdown = CancellationToken::new();
    let service = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::spawn(async move {
            let opts = analyze::ModelOptions::from_config(&config.services.analyze);
            let classifier = analyze::Classifier::load(&opts, &config.topics).unwrap();
            common::run_stage(&config, classifier, shutdown).await
        })
    };
    let out = common::read_all(&brokers, &topics[1], expected.len(), Duration::from_secs(120)).await;
    let dlq = common::read_all(&brokers, &topics[2], 1, Duration::from_secs(30)).await;
    shutdown.cancel();
    service.await.unwrap().unwrap();
    let limits = Limits::default();
    let seen: BTreeSet<String> =
        out.iter().map(|b| schema::decode::<AnalyzedPost>(b, &limits).unwrap().key()).collect();
    assert_eq!(seen, expected);
    let record: DlqRecord = schema::decode(&dlq[0], &limits).unwrap();
    assert_eq!(record.error_kind, "malformed");
}
