//! What a test asks Kafka about a consumer group, without joining it (a client that only asks the
//! coordinator cannot trigger a rebalance of the group under test).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// Offset per partition of `topic`: `None` when there is none.
pub type Offsets = BTreeMap<i32, Option<i64>>;

/// `group`'s committed offset of each of `topic`'s first `partitions` partitions.
pub async fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Offsets {
    let (brokers, group, topic) = (brokers.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(5)).expect("committed offsets");
        let offset = |p| match got.find_partition(&topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        (0..partitions).map(|p| (p, offset(p))).collect()
    })
    .await
    .expect("join")
}

/// Each partition's high watermark (`None` while empty): where a fully committed group stands.
pub async fn ends(brokers: &str, topic: &str, partitions: i32) -> Offsets {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("consumer");
        let high = |p| c.fetch_watermarks(&topic, p, Duration::from_secs(5)).expect("watermarks").1;
        (0..partitions).map(|p| (p, Some(high(p)).filter(|&h| h > 0))).collect()
    })
    .await
    .expect("join")
}
