//! The contracts between citypulse stages.
//!
//! Stages never reach into each other's internals; they agree on the types here and on Kafka topics.
//!
//! - [`ids`]: validated identifiers (topic, place, source) and the Kafka post key.
//! - [`post`]: [`Post`], what a crawler publishes to `posts.raw` (raw text lives only there).
//! - [`analyzed`]: [`AnalyzedPost`], what the analyzer publishes to `posts.analyzed` (redacted text only).
//! - [`envelope`]: `schema_version` on every Kafka message, decoding with typed errors and limits.
//! - [`dlq`]: [`DlqRecord`], what any stage writes to `posts.dlq` instead of dropping input.
//! - [`embedding`]: [`Int8Embedding`], the compact embedding carried for posts no topic claims.
//! - [`search_query`]: the saved searches' query language (AND / OR / NOT, parentheses, phrases).
//! - [`author`]: keyed pseudonymisation of author handles.
//! - [`config`]: the TOML configuration of every stage, loading with environment overrides, and one
//!   `validate()` pass that reports every problem with its file and key path.

pub mod analyzed;
pub mod author;
pub mod config;
pub mod dlq;
pub mod embedding;
pub mod envelope;
pub mod ids;
pub mod post;
pub mod search_query;
pub mod terms;

pub use analyzed::{
    AnalyzedPost, Lang, ModelInfo, Sentiment, SentimentLabel, SentimentProbabilities, TopicScore, WireSearchIndex,
};
pub use dlq::{DlqRecord, Stage};
pub use embedding::Int8Embedding;
pub use envelope::{decode, encode, DecodeError, Limits, SCHEMA_MAJOR, SCHEMA_VERSION};
pub use ids::{IdError, PlaceId, SourceId, TopicId};
pub use post::{Engagement, Post};
