//! `citypulse dlq replay` for analyzer-stage entries, on librdkafka's in-process MockCluster: the
//! raw post at the recorded offset is produced to `posts.raw` again (same key and payload); offsets
//! that do not exist and other topics are reported, not guessed at. (The mock implements neither
//! retention nor DeleteRecords, so the "no longer retained" verdict is a unit test in
//! src/replay_raw.rs.)

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schema::{DlqRecord, Stage};
use std::time::Duration;
use store::dlq::DlqEntry;
use store::replay_raw::replay_analyze;

const T: Duration = Duration::from_secs(10);

fn entry(offset_in_dlq: i64, stage: Stage, topic: &str, partition: i32, offset: i64) -> DlqEntry {
    DlqEntry {
        partition: 0,
        offset: offset_in_dlq,
        record: Ok(DlqRecord {
            stage,
            error_kind: "malformed".into(),
            reason: "test".into(),
            topic: topic.into(),
            partition,
            offset,
            key: None,
            payload_redacted: None,
            failed_at: chrono::Utc::now(),
        }),
    }
}

/// Every message of `topic`/`partition` from the start: (offset, key, payload).
fn read_partition(brokers: &str, topic: &str, partition: i32) -> Vec<(i64, String, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .create()
        .expect("consumer");
    let (low, high) = c.fetch_watermarks(topic, partition, T).expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(low)).expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + T;
    while out.len() < (high - low) as usize && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let s = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((m.offset(), s(m.key()), s(m.payload())));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyzer_entries_replay_from_posts_raw_while_retained() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("posts.raw", 2, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
    for i in 0..4 {
        let (key, body) = (format!("reddit_saigon:{i}"), format!("{{\"raw\":{i}}}"));
        producer.send(FutureRecord::to("posts.raw").partition(1).key(&key).payload(&body), T).await.expect("send");
    }

    let entries = [
        entry(10, Stage::Analyze, "posts.raw", 1, 2),
        entry(11, Stage::Store, "posts.analyzed", 0, 7), // not this path's: left out
        entry(13, Stage::Analyze, "posts.raw", 1, 99),
        entry(14, Stage::Analyze, "other.topic", 1, 3),
    ];
    let kafka = schema::config::services::KafkaConfig {
        brokers: brokers.clone(),
        topic_raw: "posts.raw".into(),
        ..Default::default()
    };
    let report = replay_analyze(&kafka, &entries, T).await.expect("replay");
    assert_eq!(report.replayed, vec![(0, 10)]);
    let skipped: Vec<(i64, &str)> = report.skipped.iter().map(|(_, o, why)| (*o, why.as_str())).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().any(|(o, why)| *o == 13 && why.contains("no offset 99")), "{skipped:?}");
    assert!(skipped.iter().any(|(o, why)| *o == 14 && why.contains("not the raw topic")), "{skipped:?}");

    // The raw post went through again: same key, same payload, appended to its partition.
    let raw = read_partition(&brokers, "posts.raw", 1);
    let last = raw.last().expect("messages");
    assert_eq!((last.0, last.1.as_str(), last.2.as_str()), (4, "reddit_saigon:2", "{\"raw\":2}"), "{raw:?}");
}
