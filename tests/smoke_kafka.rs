//! Kafka protocol reachable from Rust through `rdkafka`, both in-process (librdkafka's MockCluster)
//! and against the tansu broker process: create a topic, produce keyed messages, consume them all.

mod common;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

async fn roundtrip(brokers: &str, topic: &str, create_with_admin: bool) {
    if create_with_admin {
        create_topic(brokers, topic).await;
    }
    produce_and_consume(brokers, topic).await;
}

async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin");
    let created = admin
        .create_topics(&[NewTopic::new(topic, 3, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create_topics request");
    for result in created {
        result.expect("topic created");
    }
}

async fn produce_and_consume(brokers: &str, topic: &str) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    let mut sent = BTreeMap::new();
    for i in 0..60 {
        let key = format!("mastodon:{i}");
        let payload = format!("{{\"n\":{i}}}");
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .expect("delivered");
        sent.insert(key, payload);
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", common::unique_name("smoke"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "10000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut received = BTreeMap::new();
    // Group join takes ~3 s on MockCluster; 60 s bounds the test.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received.len() < sent.len() {
        let msg = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .expect("all messages within 60 s")
            .expect("consume");
        let key = String::from_utf8(msg.key().expect("keyed").to_vec()).expect("utf-8 key");
        let payload = String::from_utf8(msg.payload().expect("payload").to_vec()).expect("utf-8 payload");
        assert!(received.insert(key, payload).is_none(), "duplicate on a fresh group");
    }
    assert_eq!(received, sent);
}

#[tokio::test]
async fn mock_cluster_create_produce_consume() {
    let cluster = rdkafka::mocking::MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("smoke.mock", 3, 1).expect("mock topic");
    roundtrip(&cluster.bootstrap_servers(), "smoke.mock", false).await;
}

#[tokio::test]
async fn tansu_create_produce_consume() {
    let Some(brokers) = common::kafka_brokers() else { return };
    roundtrip(&brokers, &common::unique_name("smoke_tansu"), true).await;
}
