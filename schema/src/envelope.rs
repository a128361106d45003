//! Every Kafka message is a JSON object with a `schema_version` ("MAJOR.MINOR") beside the payload's
//! fields. A reader accepts any minor version of its major (new optional fields are ignored) and
//! rejects another major with [`DecodeError::UnsupportedVersion`], so the message goes to the DLQ
//! instead of being guessed at.

use serde::{de::DeserializeOwned, Serialize};

/// The major version this build reads and writes.
pub const SCHEMA_MAJOR: u32 = 1;
/// The version this build writes.
/// 1.2: `AnalyzedPost.embedding` (optional; older readers ignore it).
/// 1.3: `AnalyzedPost.search` (optional; older readers ignore it, and the store indexes a post
/// that lacks it).
pub const SCHEMA_VERSION: &str = "1.3";

/// Size limits applied while decoding; from config (`[limits]` in citypulse.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted Kafka message, bytes.
    pub max_message_bytes: usize,
    /// Largest accepted post text, bytes (UTF-8).
    pub max_text_bytes: usize,
    /// How far in the future a timestamp may be before it is rejected, seconds.
    pub max_clock_skew_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message_bytes: 256 * 1024, max_text_bytes: 20_000, max_clock_skew_secs: 3600 }
    }
}

/// Why a message's content is not acceptable although it parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    #[error("text is {bytes} bytes, over the limit of {max}")]
    TextTooLong { bytes: usize, max: usize },
    #[error("bad post id {0:?}")]
    BadId(String),
    #[error("author is not a pseudonym hash")]
    BadAuthor,
    #[error("implausible {field} {value}")]
    BadTimestamp { field: &'static str, value: String },
    #[error("sentiment score outside [-1, 1] or no topics")]
    BadLabels,
}

/// Why a Kafka message could not be decoded. Each variant is a DLQ reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("message is {bytes} bytes, over the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("message is not valid UTF-8 JSON: {0}")]
    Malformed(String),
    #[error("message has no schema_version")]
    MissingVersion,
    #[error("schema_version {0:?} is not MAJOR.MINOR")]
    BadVersion(String),
    #[error("schema_version {found} has major {major}; this build reads major {SCHEMA_MAJOR}")]
    UnsupportedVersion { found: String, major: u32 },
    #[error("field {path}: {message}")]
    Invalid { path: String, message: String },
    #[error(transparent)]
    Rejected(#[from] ValidationError),
}

impl DecodeError {
    /// A short stable name for metrics labels and the DLQ.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::MissingVersion | DecodeError::BadVersion(_) => "bad_version",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::Invalid { .. } => "invalid",
            DecodeError::Rejected(_) => "rejected",
        }
    }
}

/// A message type: knows how to validate itself after serde.
pub trait Message: Serialize + DeserializeOwned {
    fn check(&self, limits: &Limits) -> Result<(), ValidationError>;
}

impl Message for crate::Post {
    fn check(&self, limits: &Limits) -> Result<(), ValidationError> {
        self.validate(limits)
    }
}

impl Message for crate::AnalyzedPost {
    fn check(&self, limits: &Limits) -> Result<(), ValidationError> {
        self.validate(limits)
    }
}

impl Message for crate::DlqRecord {
    fn check(&self, _: &Limits) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// Serialises `msg` with `schema_version` first.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = format!("{{\"schema_version\":\"{SCHEMA_VERSION}\"").into_bytes();
    // Serialising our own types to JSON cannot fail: no maps with non-string keys, no custom errors.
    let body = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    if body.len() > 2 {
        out.push(b',');
        out.extend_from_slice(&body[1..]);
    } else {
        out.push(b'}');
    }
    out
}

/// Decodes and validates one message. Never panics, whatever the bytes.
pub fn decode<T: Message>(bytes: &[u8], limits: &Limits) -> Result<T, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge { bytes: bytes.len(), max: limits.max_message_bytes });
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let obj = value.as_object_mut().ok_or_else(|| DecodeError::Malformed("not a JSON object".into()))?;
    let version = match obj.remove("schema_version") {
        Some(serde_json::Value::String(v)) => v,
        Some(other) => return Err(DecodeError::BadVersion(other.to_string())),
        None => return Err(DecodeError::MissingVersion),
    };
    let major = parse_major(&version)?;
    if major != SCHEMA_MAJOR {
        return Err(DecodeError::UnsupportedVersion { found: version, major });
    }
    let msg: T = serde_path_to_error::deserialize(value)
        .map_err(|e| DecodeError::Invalid { path: e.path().to_string(), message: e.inner().to_string() })?;
    msg.check(limits)?;
    Ok(msg)
}

fn parse_major(version: &str) -> Result<u32, DecodeError> {
    let bad = || DecodeError::BadVersion(version.to_owned());
    let (major, minor) = version.split_once('.').ok_or_else(bad)?;
    minor.parse::<u32>().map_err(|_| bad())?;
    major.parse::<u32>().map_err(|_| bad())
}
