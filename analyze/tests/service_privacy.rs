//! Issue 28, item 5: nothing the analyzer writes carries raw text or PII. The analyze service runs
//! against librdkafka's in-process MockCluster with posts and malformed messages that hold a phone
//! number, an e-mail address and a citizen ID number; posts.analyzed, posts.dlq (`reason` and
//! `payload_redacted`) and every log line the service emits must hold none of them.
//!
//! The model is the real tokenizer and heads with a fake backend (hidden states from the token ids):
//! redaction happens before the encoder, so the weights do not matter here and the test stays fast.
//!
//! The log capture is a process-wide tracing subscriber: the service logs from tokio worker threads
//! and its own model threads, which a thread-local `set_default` would miss. That is why this file
//! holds exactly one test.

mod common;

use analyze::encoder::Encoder;
use analyze::tokenize::PostTokenizer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::{AnalyzedPost, DlqRecord, Limits, Post, SourceId};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PHONE: &str = "0903 123 456";
const EMAIL: &str = "nguyen.van.a@example.com";
const CCCD: &str = "079201001234";
const PII: [&str; 3] = [PHONE, EMAIL, CCCD];

/// Fails with the offending text when any PII string occurs in `what`.
fn assert_clean(place: &str, what: &str) {
    for pii in PII {
        assert!(!what.contains(pii), "{place} leaks {pii:?}: {what}");
    }
}

fn config(brokers: &str) -> schema::config::Config {
    common::service_config(brokers, "posts", &[("CITYPULSE__KAFKA__ANALYZE_GROUP", "privacy-analyze")])
}

fn post(id: &str, text: &str) -> Post {
    Post {
        id: id.into(),
        source: SourceId::new("replay").expect("source"),
        url: None,
        author: format!("{:032x}", id.len()),
        text: text.into(),
        lang: None,
        created_at: chrono::Utc::now(),
        fetched_at: chrono::Utc::now(),
        places: vec![],
        engagement: Default::default(),
        created_at_estimated: false,
    }
}

async fn produce(producer: &FutureProducer, key: &str, payload: &[u8]) {
    producer
        .send(FutureRecord::to("posts.raw").key(key).payload(payload), Duration::from_secs(10))
        .await
        .expect("produce");
}

/// Catches, each on its own (all four tried, each fails this test at the check named):
/// - `Output::dead_letter` keeping the payload unredacted (`payload_redacted` built from `text`
///   instead of `crate::text::redact(&text).text`): posts.dlq leaks the phone number;
/// - `dlq_record` storing `reason` as given instead of `redact(reason)`: the wrong-type post's
///   serde error ("invalid type: string \"…@example.com\"") puts the address in the DLQ reason;
/// - the DLQ warning in `dead_letter` logging the raw `reason` instead of `record.reason`: a log
///   line leaks the same address;
/// - `analyzed_post` taking `post.text` for `text_redacted` instead of the prepared, redacted text:
///   posts.analyzed leaks the phone number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pii_in_the_analysed_output_the_dlq_or_the_logs() {
    if !common::model_available() {
        return;
    }
    let lines = common::capture_logs();

    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in ["posts.raw", "posts.analyzed", "posts.dlq"] {
        cluster.create_topic(topic, 1, 1).expect("topic");
    }
    let brokers = cluster.bootstrap_servers();
    let config = config(&brokers);
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");

    // Good posts: PII in the text, alone and mixed with what must survive (a hotline, a price).
    let good = [
        post("g1", &format!("Đường ngập, gọi {PHONE} mà không ai nghe")),
        post("g2", &format!("Gửi phản ánh về {EMAIL} nhé, hotline 1022")),
        post("g3", &format!("Mất ví có CCCD {CCCD}, ai nhặt được gọi {PHONE} hoặc mail {EMAIL}, hậu tạ 500.000đ")),
    ];
    for p in &good {
        produce(&producer, &p.key(), &schema::encode(p)).await;
    }
    let all_pii = format!("gọi {PHONE}, mail {EMAIL}, CCCD {CCCD}");
    // Bad input, each with the PII where the DLQ record or the log could pick it up.
    let mut wrong_type: serde_json::Value =
        serde_json::from_slice(&schema::encode(&post("b1", &all_pii))).expect("json");
    // serde's error quotes the offending value: the reason holds the address unless redacted.
    wrong_type["engagement"] = serde_json::json!({ "likes": EMAIL });
    let mut future_major: serde_json::Value =
        serde_json::from_slice(&schema::encode(&post("b2", &all_pii))).expect("json");
    future_major["schema_version"] = "2.0".into();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("replay:b1", wrong_type.to_string().into_bytes()),
        ("replay:b2", future_major.to_string().into_bytes()),
        ("replay:b3", format!("{{not json: {all_pii}").into_bytes()),
        ("replay:b4", [&b"\xff\xfe "[..], all_pii.as_bytes()].concat()),
    ];
    for (key, payload) in &bad {
        produce(&producer, key, payload).await;
    }

    let opts = analyze::ModelOptions::from_config(&config.services.analyze);
    let tokenizer =
        PostTokenizer::load(&opts.model_dir.join("tokenizer.json"), opts.max_seq_tokens).expect("tokenizer");
    let encoder = Encoder::new(tokenizer, vec![Box::new(common::FakeBackend)], 128);
    let classifier = analyze::Classifier::with_encoder(encoder, &opts, &config.topics).expect("classifier");
    let shutdown = CancellationToken::new();
    let service = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { common::run_stage(&config, classifier, shutdown).await })
    };
    let analyzed = common::read_all(&brokers, "posts.analyzed", good.len(), Duration::from_secs(60)).await;
    let dlq = common::read_all(&brokers, "posts.dlq", bad.len(), Duration::from_secs(30)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), service)
        .await
        .expect("service drained in time")
        .expect("join")
        .expect("run");
    // After the drain, nothing more: what was read is the whole of each topic.
    assert_eq!(common::topic_len(&brokers, "posts.analyzed", 1).await, good.len(), "each good post analysed once");
    assert_eq!(common::topic_len(&brokers, "posts.dlq", 1).await, bad.len(), "each bad message in the DLQ once");

    let limits = Limits::default();
    assert_eq!(analyzed.len(), good.len(), "all good posts analysed in time");
    let mut placeholders = 0;
    for bytes in &analyzed {
        let raw = String::from_utf8_lossy(bytes);
        assert_clean("posts.analyzed", &raw);
        let p: AnalyzedPost = schema::decode(bytes, &limits).expect("analysed post");
        placeholders += ["[phone]", "[email]", "[id]"].iter().filter(|m| p.text_redacted.contains(*m)).count();
    }
    // Positive control: the PII was there and was replaced, not the whole text dropped.
    assert_eq!(placeholders, 1 + 1 + 3, "placeholders in the analysed texts");

    assert_eq!(dlq.len(), bad.len(), "all bad messages in the DLQ in time");
    let mut keys = BTreeSet::new();
    for bytes in &dlq {
        let raw = String::from_utf8_lossy(bytes);
        assert_clean("posts.dlq", &raw);
        let r: DlqRecord = schema::decode(bytes, &limits).expect("dlq record");
        assert_clean("DLQ reason", &r.reason);
        let payload = r.payload_redacted.clone().expect("the DLQ keeps the redacted payload");
        assert_clean("DLQ payload_redacted", &payload);
        // The payload is kept, redacted: the placeholders show the PII was in it.
        assert!(payload.contains("[phone]") && payload.contains("[email]"), "redacted payload: {payload}");
        if r.key.as_deref() == Some("replay:b1") {
            // Positive control: this reason quoted the address, so its redaction was put to work.
            assert!(r.reason.contains("invalid type") && r.reason.contains("[email]"), "b1 reason: {}", r.reason);
        }
        keys.insert(r.key.expect("key"));
    }
    assert_eq!(keys, bad.iter().map(|(k, _)| k.to_string()).collect::<BTreeSet<_>>());

    let lines = lines.lock().expect("log lines").clone();
    for line in &lines {
        assert_clean("log line", line);
    }
    // Positive control: the capture saw the service's DLQ warnings, with their reasons.
    let dlq_lines = lines.iter().filter(|l| l.contains("message sent to the DLQ") && l.contains("reason=")).count();
    assert_eq!(dlq_lines, bad.len(), "DLQ warnings captured; all lines: {lines:#?}");
}
