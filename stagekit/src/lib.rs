//! What every stage shares, so that no stage builds its own and none drifts:
//!
//! - [`stage`]: the stages' names (`--stages`, metric prefixes, drain order) and the shape of a
//!   stage's entry point.
//! - [`health`]: the health registry behind `/healthz`, one per process, with each stage's
//!   components under its name.
//! - [`kafka`]: every Kafka client's settings, built from [`schema::config::services::KafkaConfig`]
//!   only, and creating the topics.
//! - [`publish`]: the one producer path for outputs and dead letters, with the one retry policy
//!   (retry with capped backoff until acknowledged or shutdown) and the DLQ's metrics.
//! - [`lag`]: consumer-lag gauges from librdkafka's statistics, named by stage.
//! - [`offsets`]: a committed offset that goes back (the broker lost data) said loudly.
//!
//! Stages depend on this crate and on `schema`, never on each other.

pub mod health;
pub mod kafka;
pub mod lag;
pub mod offsets;
pub mod publish;
pub mod stage;

pub use health::{Health, StageHealth};
pub use publish::{Backoff, Cancelled, DlqPublisher, Publisher};
pub use stage::StageName;
