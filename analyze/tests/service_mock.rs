//! The analyze service against librdkafka's in-process MockCluster and the real model: every post in
//! posts.raw comes out analysed in posts.analyzed (redacted, no raw text), bad input lands in the DLQ
//! with its reason, and a restart in the same group resumes after the committed offsets.

mod common;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::{AnalyzedPost, DlqRecord, Limits, Post, SourceId};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn config(brokers: &str) -> schema::config::Config {
    let repo = common::repo();
    let env = [
        ("CITYPULSE__KAFKA__BROKERS", brokers.to_owned()),
        ("CITYPULSE__ANALYZE__MODEL_DIR", repo.join("models/multilingual-e5-small").display().to_string()),
        ("CITYPULSE__ANALYZE__HEADS_DIR", repo.join("models/heads").display().to_string()),
        ("CITYPULSE__ANALYZE__BACKEND", "candle".to_owned()),
        ("CITYPULSE__ANALYZE__BATCH_MAX_WAIT_MS", "50".to_owned()),
    ];
    schema::config::Config::load_with_env(&repo.join("config"), env.map(|(k, v)| (k.to_owned(), v)))
        .expect("shipped config with overrides")
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
    }
}

async fn produce(brokers: &str, topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    producer.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(10)).await.unwrap();
}

/// Reads everything in `topic` until `want` messages or `wait` passes.
async fn read_all(brokers: &str, topic: &str, want: usize, wait: Duration) -> Vec<Vec<u8>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}-{}", rand_suffix()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while out.len() < want {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
            _ => break,
        }
    }
    out
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_analysed_bad_input_to_dlq_and_restart_resumes() {
    if !common::model_available() {
        return;
    }
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("posts.raw", 3, 1).unwrap();
    cluster.create_topic("posts.analyzed", 3, 1).unwrap();
    cluster.create_topic("posts.dlq", 1, 1).unwrap();
    let config = config(&brokers);
    let n = 24;
    for i in 0..n {
        let p = post(i);
        produce(&brokers, "posts.raw", &p.key(), &schema::encode(&p)).await;
    }
    produce(&brokers, "posts.raw", "replay:bad1", b"{not json").await;
    let mut future_major = serde_json::to_value(post(99)).unwrap();
    future_major["schema_version"] = "2.0".into();
    produce(&brokers, "posts.raw", "replay:bad2", future_major.to_string().as_bytes()).await;

    let run_once = |shutdown: CancellationToken| {
        let config = config.clone();
        tokio::spawn(async move {
            let opts = analyze::ModelOptions::from_config(&config.services.analyze);
            let classifier = analyze::Classifier::load(&opts, &config.topics).unwrap();
            analyze::service::run(&config, classifier, shutdown).await
        })
    };
    let shutdown = CancellationToken::new();
    let service = run_once(shutdown.clone());
    let analyzed = read_all(&brokers, "posts.analyzed", n, Duration::from_secs(120)).await;
    let dlq = read_all(&brokers, "posts.dlq", 2, Duration::from_secs(30)).await;
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
    let again = read_all(&brokers, "posts.analyzed", n + 1, Duration::from_secs(90)).await;
    shutdown.cancel();
    service.await.unwrap().unwrap();
    let keys: Vec<String> = again.iter().map(|b| schema::decode::<AnalyzedPost>(b, &limits).unwrap().key()).collect();
    assert_eq!(keys.len(), n + 1, "old posts were not analysed again: {keys:?}");
    assert!(keys.contains(&p.key()));
}
