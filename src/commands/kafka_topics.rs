//! Creates the Kafka topics citypulse uses when they do not exist yet: partitions from config, and
//! `posts.raw` with its retention (raw text must not outlive `kafka.raw_retention_days`).

use anyhow::{Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use schema::config::services::KafkaConfig;

pub async fn ensure_topics(kafka: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .context("creating the Kafka admin client")?;
    let retention_ms = (u64::from(kafka.raw_retention_days) * 86_400_000).to_string();
    let topics = [
        NewTopic::new(&kafka.topic_raw, kafka.partitions, TopicReplication::Fixed(1))
            .set("retention.ms", &retention_ms),
        NewTopic::new(&kafka.topic_analyzed, kafka.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&kafka.topic_dlq, 1, TopicReplication::Fixed(1)),
    ];
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30)));
    for result in admin.create_topics(&topics, &options).await.context("creating Kafka topics")? {
        match result {
            Ok(topic) => tracing::info!(%topic, "created Kafka topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create Kafka topic {topic}: {code}"),
        }
    }
    Ok(())
}
