//! [`PostProducer`]: posts to Kafka `posts.raw`. Idempotent, acks=all, lz4; keyed
//! `<source>:<native id>` so one post always lands on one partition; payload `schema::encode`.
//!
//! [`PostProducer::send_all`] enqueues a whole page, then awaits every acknowledgement: the caller
//! advances its cursor only when this returns Ok. [`PostProducer::enqueue_all`] splits the two so a
//! bulk source (replay) prepares its next batch while one is in flight. A full local queue is back-pressure (wait and
//! enqueue again), never a dropped post.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::config::services::KafkaConfig;
use schema::Post;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot create the Kafka producer: {0}")]
    Create(KafkaError),
    #[error("post {key} was not delivered: {error}")]
    Delivery { key: String, error: KafkaError },
    #[error("post {key}: the producer was dropped before delivery")]
    Canceled { key: String },
}

/// How long to wait before enqueueing again when librdkafka's local queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);

#[derive(Clone)]
pub struct PostProducer {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for PostProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostProducer").field("topic", &self.topic).finish()
    }
}

impl PostProducer {
    /// The shared producer settings ([`stagekit::kafka::producer`]), to `kafka.topic_raw`.
    pub fn new(kafka: &KafkaConfig) -> Result<Self, ProduceError> {
        Self::with_client_config(stagekit::kafka::producer(kafka), &kafka.topic_raw)
    }

    pub fn with_client_config(config: ClientConfig, topic: &str) -> Result<Self, ProduceError> {
        let producer: FutureProducer = config.create().map_err(ProduceError::Create)?;
        Ok(PostProducer { producer, topic: topic.to_owned() })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces every post and returns once Kafka acknowledged all of them, or with the first
    /// failure (after librdkafka's own retries within `message.timeout.ms`). On error some posts may
    /// have been delivered: the caller re-sends the page, and the key lets the store collapse them.
    pub async fn send_all(&self, posts: &[Post]) -> Result<(), ProduceError> {
        self.enqueue_all(posts).await?.acknowledged().await
    }

    /// Enqueues every post (waiting while the local queue is full) without waiting for Kafka, so a
    /// caller can prepare the next batch while this one is in flight.
    pub async fn enqueue_all(&self, posts: &[Post]) -> Result<InFlight, ProduceError> {
        let mut pending = Vec::with_capacity(posts.len());
        for post in posts {
            let key = post.key();
            let payload = schema::encode(post);
            let delivery = self.enqueue(&key, &payload).await?;
            pending.push((key, delivery));
        }
        Ok(InFlight { pending })
    }

    async fn enqueue(&self, key: &str, payload: &[u8]) -> Result<DeliveryFuture, ProduceError> {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    metrics::counter!("citypulse_ingest_queue_full_waits_total").increment(1);
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_WAIT).await;
                }
                Err((error, _)) => return Err(ProduceError::Delivery { key: key.to_owned(), error }),
            }
        }
    }
}

/// Posts enqueued and not yet acknowledged.
#[must_use = "a batch counts as delivered only once acknowledged() returned Ok"]
pub struct InFlight {
    pending: Vec<(String, DeliveryFuture)>,
}

impl InFlight {
    /// Post keys of the batch.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pending.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Waits for every acknowledgement and gives each post's own: a caller that answers per post
    /// (the intake) says which were taken.
    pub async fn each_acknowledged(self) -> Vec<(String, Result<(), ProduceError>)> {
        let mut outcomes = Vec::with_capacity(self.pending.len());
        for (key, delivery) in self.pending {
            let outcome = match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(ProduceError::Delivery { key: key.clone(), error }),
                Err(_) => Err(ProduceError::Canceled { key: key.clone() }),
            };
            outcomes.push((key, outcome));
        }
        outcomes
    }

    /// Waits for every acknowledgement; the first failure is returned after all have settled.
    pub async fn acknowledged(self) -> Result<(), ProduceError> {
        self.each_acknowledged().await.into_iter().find_map(|(_, outcome)| outcome.err()).map_or(Ok(()), Err)
    }
}
