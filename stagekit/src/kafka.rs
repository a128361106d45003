//! Every Kafka client citypulse makes is configured here, from [`KafkaConfig`] alone, so that the
//! delivery rules (idempotent, acks=all, lz4; offsets stored only after the downstream write) and
//! the configured timeouts hold for every stage alike.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use schema::config::services::KafkaConfig;
use std::time::Duration;

/// A producer: idempotent, acks=all, lz4, giving up on a message after `delivery_timeout_ms`
/// (librdkafka retries inside that time).
pub fn producer(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", k.delivery_timeout_ms.to_string())
        .set("socket.timeout.ms", k.socket_timeout_ms.to_string())
        // Pages and batches arrive in bursts; a few ms of lingering packs them into few requests.
        .set("linger.ms", "5");
    c
}

/// A consumer in `group`: offsets are stored by the stage only after its downstream write
/// (`enable.auto.offset.store=false`) and committed by librdkafka's auto-commit; a new group
/// starts at the earliest message; lag statistics every `statistics_interval_ms`.
pub fn consumer(k: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", k.heartbeat_interval_ms.to_string())
        .set("statistics.interval.ms", k.statistics_interval_ms.to_string())
        .set("socket.timeout.ms", k.socket_timeout_ms.to_string());
    c
}

/// A reader that assigns partitions itself and never commits (operators' tools: reading the DLQ,
/// fetching a raw post again). `group` only names it to the broker.
pub fn reader(k: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    c
}

/// The timeout a single produce waits for, from `delivery_timeout_ms`.
pub fn delivery_timeout(k: &KafkaConfig) -> Duration {
    Duration::from_millis(u64::from(k.delivery_timeout_ms))
}

/// Creates the topics citypulse uses that do not exist yet: `partitions` each (the DLQ one), and
/// `posts.raw` with its retention (raw text must not outlive `raw_retention_days`). Topics that
/// exist are left as they are, without asking the broker to create them (a cluster may refuse
/// CreateTopics to the service's user, and librdkafka's mock cluster does not answer it). Returns
/// the topics created.
pub async fn ensure_topics(k: &KafkaConfig) -> Result<Vec<String>, TopicsError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &k.brokers);
    let existing = existing_topics(config.clone()).await?;
    let exists = |name: &str| existing.iter().any(|t| t == name);
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(TopicsError::Client)?;
    let retention_ms = (u64::from(k.raw_retention_days) * 86_400_000).to_string();
    let topics: Vec<NewTopic<'_>> = [
        NewTopic::new(&k.topic_raw, k.partitions, TopicReplication::Fixed(1)).set("retention.ms", &retention_ms),
        NewTopic::new(&k.topic_analyzed, k.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&k.topic_dlq, 1, TopicReplication::Fixed(1)),
    ]
    .into_iter()
    .filter(|t| !exists(t.name))
    .collect();
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    for result in admin.create_topics(&topics, &options).await.map_err(TopicsError::Client)? {
        match result {
            Ok(topic) => {
                tracing::info!(%topic, "created Kafka topic");
                created.push(topic);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicsError::Refused { topic, code }),
        }
    }
    Ok(created)
}

/// The topics the cluster has (a blocking metadata request, off the async threads).
async fn existing_topics(config: ClientConfig) -> Result<Vec<String>, TopicsError> {
    let fetch = move || {
        let client: BaseConsumer = config.create().map_err(TopicsError::Client)?;
        let metadata = client.fetch_metadata(None, Duration::from_secs(30)).map_err(TopicsError::Client)?;
        Ok(metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name().to_owned()).collect())
    };
    tokio::task::spawn_blocking(fetch).await.map_err(|e| TopicsError::Task(e.to_string()))?
}

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("asking Kafka for its topics: {0}")]
    Task(String),
    #[error("creating Kafka topics: {0}")]
    Client(KafkaError),
    #[error("cannot create Kafka topic {topic}: {code}")]
    Refused { topic: String, code: RDKafkaErrorCode },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_takes_the_configured_values() {
        let k = KafkaConfig {
            brokers: "k1:9092,k2:9092".into(),
            delivery_timeout_ms: 1234,
            session_timeout_ms: 7000,
            heartbeat_interval_ms: 700,
            statistics_interval_ms: 2500,
            ..KafkaConfig::default()
        };
        let p = producer(&k);
        for (key, want) in [
            ("bootstrap.servers", "k1:9092,k2:9092"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("compression.type", "lz4"),
            ("message.timeout.ms", "1234"),
        ] {
            assert_eq!(p.get(key), Some(want), "producer {key}");
        }
        let c = consumer(&k, "g");
        for (key, want) in [
            ("group.id", "g"),
            ("enable.auto.offset.store", "false"),
            ("session.timeout.ms", "7000"),
            ("heartbeat.interval.ms", "700"),
            ("statistics.interval.ms", "2500"),
        ] {
            assert_eq!(c.get(key), Some(want), "consumer {key}");
        }
        assert_eq!(reader(&k, "r").get("enable.auto.commit"), Some("false"));
        assert_eq!(delivery_timeout(&k), Duration::from_millis(1234));
    }
}
