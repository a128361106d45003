//! [`Post`]: one public post as a crawler saw it. Published to Kafka `posts.raw`, keyed by
//! [`Post::key`], and nowhere else: it carries the raw text.

use crate::envelope::{Limits, ValidationError};
use crate::ids::{PlaceId, SourceId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Engagement counts, where the source gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<u64>,
}

/// A public post as published (HTML stripped), with its author pseudonymised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The source's own id of the post.
    pub id: String,
    /// The configured source that fetched it (e.g. `mastodon_social`).
    pub source: SourceId,
    /// Link to the post, where the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Keyed hash of the author handle ([`crate::author::AuthorHasher`]); never the handle itself.
    pub author: String,
    /// Text as published, HTML stripped.
    pub text: String,
    /// Language as the source declares it (BCP-47-ish), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// When the post was published, UTC.
    pub created_at: DateTime<Utc>,
    /// When the crawler fetched it, UTC.
    pub fetched_at: DateTime<Utc>,
    /// Canonical place ids from the gazetteer that the text mentions.
    #[serde(default)]
    pub places: Vec<PlaceId>,
    #[serde(default)]
    pub engagement: Engagement,
    /// `created_at` is the fetch time because the source gave no readable date (schema 1.1). Such
    /// posts are stored and counted but kept out of trend and alert windows: a feed's backlog of
    /// undated items would otherwise look like a spike at the moment it was crawled.
    #[serde(default, skip_serializing_if = "crate::post::is_false")]
    pub created_at_estimated: bool,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl Post {
    /// The Kafka key and ClickHouse dedup key: `<source>:<native id>`. The same post always lands on
    /// the same partition, which the store relies on to skip redeliveries.
    pub fn key(&self) -> String {
        post_key(&self.source, &self.id)
    }

    /// Checks what serde cannot: sizes, timestamps, non-empty ids.
    pub fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        validate_common(&self.id, &self.author, &self.created_at, &self.fetched_at, limits)?;
        if self.text.len() > limits.max_text_bytes {
            return Err(ValidationError::TextTooLong { bytes: self.text.len(), max: limits.max_text_bytes });
        }
        Ok(())
    }
}

/// `<source>:<native id>`.
pub fn post_key(source: &SourceId, id: &str) -> String {
    format!("{source}:{id}")
}

/// Earliest plausible post time: anything before is a parser bug or a hostile feed.
const EARLIEST_POST_SECS: i64 = 946_684_800; // 2000-01-01T00:00:00Z

pub(crate) fn validate_common(
    id: &str,
    author: &str,
    created_at: &DateTime<Utc>,
    fetched_at: &DateTime<Utc>,
    limits: &Limits,
) -> Result<(), ValidationError> {
    if id.is_empty() || id.len() > 256 {
        return Err(ValidationError::BadId(id.chars().take(64).collect()));
    }
    if author.len() > 128 {
        return Err(ValidationError::BadAuthor);
    }
    let max_future = chrono::Duration::seconds(limits.max_clock_skew_secs);
    for (field, ts) in [("created_at", created_at), ("fetched_at", fetched_at)] {
        if ts.timestamp() < EARLIEST_POST_SECS || *ts > Utc::now() + max_future {
            return Err(ValidationError::BadTimestamp { field, value: ts.to_rfc3339() });
        }
    }
    Ok(())
}
