//! The one way a stage publishes to Kafka and waits for it: [`Publisher`] (analysed posts, DLQ
//! records) with the one retry policy, and [`DlqPublisher`], the one builder and sender of DLQ
//! records.
//!
//! The policy: a message Kafka did not acknowledge within `delivery_timeout_ms` (librdkafka
//! retries inside that time) is logged, counted and sent again after a capped exponential pause,
//! until it is acknowledged or the stage is shut down. On shutdown the caller gets
//! [`Cancelled`] and does not store the source message's offset, so the message is redelivered:
//! a post is never acknowledged upstream without its output downstream, and a Kafka outage only
//! stalls the stage.

use crate::{StageHealth, StageName};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema::config::services::KafkaConfig;
use schema::DlqRecord;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Capped exponential backoff between retries of a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// From 200 ms up to `max` (at least 200 ms).
    pub fn up_to(max: Duration) -> Self {
        let initial = Duration::from_millis(200);
        Backoff { initial, max: max.max(initial) }
    }

    /// The pause before retry number `attempt` (0-based): initial × 2^attempt, at most `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The stage was shut down before Kafka acknowledged the message; its source is redelivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shut down before Kafka acknowledged the message (it will be redelivered)")]
pub struct Cancelled;

/// A stage's producer with the retry policy. Cheap to clone. While a message keeps failing, the
/// stage's `kafka` health component says so (`/healthz` names the stage).
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    stage: StageName,
    health: StageHealth,
    /// Set after a failed attempt, cleared by the next acknowledgement.
    failing: Arc<AtomicBool>,
    backoff: Backoff,
    attempt_timeout: Duration,
}

impl Publisher {
    pub fn new(k: &KafkaConfig, health: StageHealth) -> Result<Self, KafkaError> {
        health.set_ok("kafka");
        Ok(Publisher {
            producer: crate::kafka::producer(k).create()?,
            stage: health.name(),
            health,
            failing: Arc::default(),
            backoff: Backoff::up_to(Duration::from_millis(k.retry_max_backoff_ms)),
            attempt_timeout: crate::kafka::delivery_timeout(k),
        })
    }

    /// Sends `payload` to `topic` until Kafka acknowledges it. `what` names the message in the
    /// log ("producing the analysed post"). At least one attempt is made even when `shutdown` is
    /// already cancelled (a draining stage still gets its outputs out); after a failed attempt,
    /// shutdown ends the retries with [`Cancelled`].
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&str>,
        payload: &[u8],
        what: &str,
        shutdown: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let mut attempt = 0;
        loop {
            let mut record = FutureRecord::<str, [u8]>::to(topic).payload(payload);
            if let Some(k) = key {
                record = record.key(k);
            }
            let error = match self.producer.send(record, self.attempt_timeout).await {
                Ok(_) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        self.health.set_ok("kafka");
                    }
                    return Ok(());
                }
                Err((error, _)) => error,
            };
            self.failing.store(true, Ordering::Relaxed);
            self.health.set_unhealthy("kafka", format!("publishing to {topic} failed: {error}"));
            let pause = self.backoff.delay(attempt);
            metrics::counter!(self.stage.metric("publish_failures_total"), "topic" => topic.to_owned()).increment(1);
            tracing::error!(%error, topic, key, attempt, ?pause, "{what} failed; retrying until Kafka takes it");
            attempt += 1;
            tokio::select! {
                () = shutdown.cancelled() => return Err(Cancelled),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Where the message that failed was read from.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a str>,
}

/// Builds and publishes a stage's DLQ records (`posts.dlq`), counting them as
/// `citypulse_<stage>_dlq_total{kind}` once acknowledged.
#[derive(Clone)]
pub struct DlqPublisher {
    publisher: Publisher,
    topic: String,
    stage: schema::Stage,
}

impl DlqPublisher {
    /// Dead letters of `stage`, sent through `publisher` to `kafka.topic_dlq`.
    pub fn new(publisher: Publisher, k: &KafkaConfig, stage: schema::Stage) -> Self {
        DlqPublisher { publisher, topic: k.topic_dlq.clone(), stage }
    }

    /// The record for the message at `at`. `reason` and `payload_redacted` must already hold no
    /// raw text: the caller redacts (the DLQ never holds raw text).
    pub fn record(
        &self,
        at: MessageRef<'_>,
        kind: &str,
        reason: String,
        payload_redacted: Option<String>,
    ) -> DlqRecord {
        DlqRecord {
            stage: self.stage,
            error_kind: kind.to_owned(),
            reason,
            topic: at.topic.to_owned(),
            partition: at.partition,
            offset: at.offset,
            key: at.key.map(str::to_owned),
            payload_redacted,
            failed_at: chrono::Utc::now(),
        }
    }

    /// Publishes `record` with the retry policy; Ok once Kafka acknowledged it.
    pub async fn publish(&self, record: &DlqRecord, shutdown: &CancellationToken) -> Result<(), Cancelled> {
        let body = schema::encode(record);
        self.publisher.send(&self.topic, record.key.as_deref(), &body, "writing to the DLQ", shutdown).await?;
        let name = self.publisher.stage.metric("dlq_total");
        metrics::counter!(name, "kind" => record.error_kind.clone()).increment(1);
        tracing::warn!(
            partition = record.partition,
            offset = record.offset,
            kind = %record.error_kind,
            reason = %record.reason,
            "message sent to the DLQ"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) };
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(3), Duration::from_millis(800));
        assert_eq!(b.delay(10), Duration::from_secs(2));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(2));
        assert_eq!(Backoff::up_to(Duration::ZERO).max, Duration::from_millis(200));
    }
}
