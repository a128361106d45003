//! `citypulse dlq replay` for analyzer-stage entries. The analyzer's DLQ record names where the
//! post was in `posts.raw` (topic, partition, offset) but holds only redacted text, so the post is
//! sent through again by re-reading it there and producing it to `posts.raw` once more, same key,
//! partition and headers: the analyzer treats it as any new message. That works while
//! `posts.raw` still retains the offset (`kafka.raw_retention_days`); after that the raw text is
//! gone by design and the entry is reported as such. Replaying twice is harmless: the store
//! recognises a post analysed again with the same result as a duplicate.

use crate::dlq::DlqEntry;
use crate::error::StoreError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use schema::config::services::KafkaConfig;
use schema::Stage;
use std::time::{Duration, Instant};

/// What [`replay_analyze`] did, by DLQ (partition, offset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawReplayReport {
    /// Entries whose raw post was produced to the raw topic again.
    pub replayed: Vec<(i32, i64)>,
    /// Entries that could not be replayed, and why.
    pub skipped: Vec<(i32, i64, String)>,
}

/// One message read back from the raw topic.
struct RawMessage {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
}

/// Re-produces the `posts.raw` message behind each analyzer-stage entry of `entries` to
/// `topic_raw`. Other stages' entries are left out (not reported). Kafka errors other than "not
/// retained" are returned: nothing is half-replayed silently.
pub async fn replay_analyze(
    kafka: &KafkaConfig,
    entries: &[DlqEntry],
    timeout: Duration,
) -> Result<RawReplayReport, StoreError> {
    let topic_raw = kafka.topic_raw.as_str();
    let mut report = RawReplayReport::default();
    let mut wanted: Vec<(i32, i64, i32, i64)> = Vec::new(); // DLQ partition/offset → raw partition/offset
    for e in entries {
        let Ok(r) = &e.record else { continue };
        if r.stage != Stage::Analyze {
            continue;
        }
        if r.topic != topic_raw {
            let why = format!("read from {:?}, not the raw topic {topic_raw:?}", r.topic);
            report.skipped.push((e.partition, e.offset, why));
            continue;
        }
        wanted.push((e.partition, e.offset, r.partition, r.offset));
    }
    if wanted.is_empty() {
        return Ok(report);
    }
    let (k, w) = (kafka.clone(), wanted.clone());
    let fetched = tokio::task::spawn_blocking(move || read_raw(&k, &w, timeout))
        .await
        .map_err(|e| StoreError::Invalid(format!("raw reader panicked: {e}")))??;
    let producer: FutureProducer = stagekit::kafka::producer(kafka).create()?;
    for ((dlq_partition, dlq_offset, raw_partition, _), raw) in wanted.into_iter().zip(fetched) {
        let msg = match raw {
            Ok(m) => m,
            Err(why) => {
                report.skipped.push((dlq_partition, dlq_offset, why));
                continue;
            }
        };
        // Back to the partition it was read from: the key's partition, even if partitions were added.
        let mut rec = FutureRecord::<[u8], [u8]>::to(topic_raw).partition(raw_partition).payload(&msg.payload);
        if let Some(k) = &msg.key {
            rec = rec.key(k);
        }
        if let Some(h) = msg.headers {
            rec = rec.headers(h);
        }
        producer.send(rec, stagekit::kafka::delivery_timeout(kafka)).await.map_err(|(e, _)| StoreError::Kafka(e))?;
        report.replayed.push((dlq_partition, dlq_offset));
    }
    Ok(report)
}

/// Reads the message at each wanted (raw partition, raw offset), or says why it cannot. Blocking.
fn read_raw(
    kafka: &KafkaConfig,
    wanted: &[(i32, i64, i32, i64)],
    timeout: Duration,
) -> Result<Vec<Result<RawMessage, String>>, StoreError> {
    let topic = kafka.topic_raw.as_str();
    let consumer: BaseConsumer = stagekit::kafka::reader(kafka, "citypulse-dlq-replay").create()?;
    let mut out = Vec::with_capacity(wanted.len());
    for &(_, _, partition, offset) in wanted {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        if let Err(why) = retained(topic, partition, offset, low, high) {
            out.push(Err(why));
            continue;
        }
        out.push(read_one(&consumer, topic, partition, offset, timeout)?);
    }
    Ok(out)
}

/// Whether `offset` is still in the partition, given its low and high watermarks.
fn retained(topic: &str, partition: i32, offset: i64, low: i64, high: i64) -> Result<(), String> {
    if offset < low {
        return Err(format!(
            "{topic}/{partition} offset {offset} is no longer retained (oldest kept: {low}); the raw post \
             is gone, re-ingest it from its source"
        ));
    }
    if offset >= high {
        return Err(format!("{topic}/{partition} has no offset {offset} (next is {high})"));
    }
    Ok(())
}

fn read_one(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> Result<Result<RawMessage, String>, StoreError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
        let msg = msg?;
        if msg.partition() != partition {
            continue;
        }
        // A later offset means the wanted one was deleted (or compacted) meanwhile.
        if msg.offset() != offset {
            return Ok(Err(format!("{topic}/{partition} offset {offset} is no longer retained")));
        }
        let headers = msg.headers().map(|h| h.detach());
        return Ok(Ok(RawMessage {
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers,
        }));
    }
    Err(StoreError::Invalid(format!("timed out reading {topic}/{partition} at offset {offset}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    // librdkafka's MockCluster does not implement DeleteRecords or retention, so the "aged out"
    // verdict is tested here; tests/replay_raw.rs covers the Kafka round trip.
    #[test]
    fn offsets_below_the_low_watermark_are_reported_as_no_longer_retained() {
        let gone = retained("posts.raw", 1, 4, 10, 20).expect_err("aged out");
        assert!(gone.contains("no longer retained") && gone.contains("oldest kept: 10"), "{gone}");
        assert!(retained("posts.raw", 1, 10, 10, 20).is_ok());
        assert!(retained("posts.raw", 1, 19, 10, 20).is_ok());
        assert!(retained("posts.raw", 1, 20, 10, 20).expect_err("past the end").contains("no offset 20"));
    }
}
