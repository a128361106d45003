//! [`DlqRecord`]: what a stage publishes to `posts.dlq` when it cannot process a message. The
//! payload is redacted before it gets here: the DLQ never holds raw text.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The stage that gave up on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Ingest,
    Analyze,
    Store,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Analyze => "analyze",
            Stage::Store => "store",
        }
    }
}

/// One failed message, with enough to find it again and replay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqRecord {
    pub stage: Stage,
    /// Short stable kind (`malformed`, `unsupported_version`, `clickhouse_rejected`, ...).
    pub error_kind: String,
    /// The full human-readable reason (e.g. ClickHouse's message).
    pub reason: String,
    /// Where the source message was: topic, partition, offset.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The source message's key, if it had one and it was UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The message with raw text redacted (or cut), as far as it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_redacted: Option<String>,
    pub failed_at: DateTime<Utc>,
}
