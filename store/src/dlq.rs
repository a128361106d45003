//! `citypulse dlq list|show|replay` for the store: read what is in `posts.dlq`, and send store-stage
//! records through the [`Writer`] again once the cause is fixed. Replaying is idempotent (the writer
//! skips posts already stored), so replaying a record twice, or one that already succeeded, is safe.
//! Analyzer-stage records are replayed by [`crate::replay_raw`] (re-reading `posts.raw`), not here.

use crate::error::StoreError;
use crate::writer::{WriteReport, Writer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use schema::config::services::KafkaConfig;
use schema::{AnalyzedPost, DlqRecord, Limits, Stage};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One message of the DLQ topic.
#[derive(Debug, Clone)]
pub struct DlqEntry {
    pub partition: i32,
    pub offset: i64,
    /// The record, or why it could not be read.
    pub record: Result<DlqRecord, String>,
}

/// What [`replay`] did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// The writer's report for the replayed posts (indexes refer to `replayed`).
    pub write: WriteReport,
    /// (partition, offset) of each entry sent to the writer, in order.
    pub replayed: Vec<(i32, i64)>,
    /// (partition, offset, why) of entries this stage cannot replay.
    pub skipped: Vec<(i32, i64, String)>,
}

/// Reads every message in the DLQ topic (`kafka.topic_dlq`) from the beginning up to the end as
/// it is when called. Blocking: call from `spawn_blocking` in async code.
pub fn read_all(kafka: &KafkaConfig, timeout: Duration) -> Result<Vec<DlqEntry>, StoreError> {
    let topic = kafka.topic_dlq.as_str();
    let consumer: BaseConsumer = stagekit::kafka::reader(kafka, "citypulse-dlq-reader").create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = TopicPartitionList::new();
    // The last offset to read per partition (high watermark − 1 at call time).
    let mut last: HashMap<i32, i64> = HashMap::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
            if high > low {
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))?;
                last.insert(p.id(), high - 1);
            }
        }
    }
    let mut entries = Vec::new();
    if last.is_empty() {
        return Ok(entries);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    while !last.is_empty() && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
        let msg = msg?;
        let limits = Limits { max_message_bytes: usize::MAX, ..Limits::default() };
        let record = schema::decode::<DlqRecord>(msg.payload().unwrap_or_default(), &limits).map_err(|e| e.to_string());
        entries.push(DlqEntry { partition: msg.partition(), offset: msg.offset(), record });
        if last.get(&msg.partition()).is_some_and(|&end| msg.offset() >= end) {
            last.remove(&msg.partition());
        }
    }
    if !last.is_empty() {
        return Err(StoreError::Invalid(format!("timed out reading {topic}: partitions {:?} unfinished", last.keys())));
    }
    entries.sort_by_key(|e| (e.partition, e.offset));
    Ok(entries)
}

/// Writes the posts of store-stage `entries` again.
pub async fn replay(
    entries: &[DlqEntry],
    writer: &Writer,
    shutdown: &CancellationToken,
) -> Result<ReplayReport, StoreError> {
    let mut report = ReplayReport::default();
    let mut posts = Vec::new();
    for e in entries {
        let post = match &e.record {
            Err(why) => Err(format!("unreadable DLQ record: {why}")),
            Ok(r) if r.stage != Stage::Store => Err(format!("{} stage: replay it there", r.stage.as_str())),
            Ok(r) => match r.payload_redacted.as_deref() {
                None => Err("no payload".to_owned()),
                Some(p) => schema::decode::<AnalyzedPost>(p.as_bytes(), &Limits::default())
                    .map_err(|err| format!("payload still undecodable ({}): {err}", err.kind())),
            },
        };
        match post {
            Ok(p) => {
                posts.push(p);
                report.replayed.push((e.partition, e.offset));
            }
            Err(why) => report.skipped.push((e.partition, e.offset, why)),
        }
    }
    report.write = writer.write(posts, shutdown).await?;
    Ok(report)
}
