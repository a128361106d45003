//! [`PostRow`]: the `posts` table's row, built from an [`AnalyzedPost`], and the comparison that
//! decides whether a delivery is a duplicate.

use chrono::{DateTime, Utc};
use clickhouse::Row;
use schema::AnalyzedPost;
use serde::{Deserialize, Serialize};

/// One row of `posts`, field for field (RowBinary: DateTime is seconds as u32).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct PostRow {
    pub key: String,
    pub source: String,
    pub id: String,
    pub url: String,
    pub author: String,
    pub lang: String,
    pub lang_declared: String,
    pub text_redacted: String,
    pub sentiment: String,
    pub score: f32,
    pub p_negative: f32,
    pub p_neutral: f32,
    pub p_positive: f32,
    pub topics: Vec<String>,
    pub topic_scores: Vec<f32>,
    pub primary_topic: String,
    pub places: Vec<String>,
    pub likes: Option<u64>,
    pub shares: Option<u64>,
    pub replies: Option<u64>,
    pub created_at: u32,
    pub created_ms: u16,
    pub fetched_at: u32,
    pub analyzed_at: u32,
    pub analyzed_ms: u16,
    pub model_id: String,
    pub model_version: String,
    /// [`PostRow::content_hash`] of this row.
    pub content_hash: u64,
    pub sign: i8,
    pub version: u64,
}

/// Why a post cannot become a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value} does not fit a ClickHouse DateTime (1970..2106)")]
pub struct RowError {
    pub field: &'static str,
    pub value: String,
}

fn seconds(field: &'static str, t: &DateTime<Utc>) -> Result<(u32, u16), RowError> {
    let secs = u32::try_from(t.timestamp()).map_err(|_| RowError { field, value: t.to_rfc3339() })?;
    // timestamp_subsec_millis is < 1000 except inside a leap second; clamp keeps it a valid ms.
    Ok((secs, t.timestamp_subsec_millis().min(999) as u16))
}

impl PostRow {
    /// The live (+1) row for `post`. Topics and places are de-duplicated, keeping their order, so a
    /// post never counts twice in one trend cell.
    pub fn from_post(post: &AnalyzedPost, version: u64) -> Result<Self, RowError> {
        let (created_at, created_ms) = seconds("created_at", &post.created_at)?;
        let (fetched_at, _) = seconds("fetched_at", &post.fetched_at)?;
        let (analyzed_at, analyzed_ms) = seconds("analyzed_at", &post.analyzed_at)?;
        let mut topics = Vec::with_capacity(post.topics.len());
        let mut topic_scores = Vec::with_capacity(post.topics.len());
        for t in &post.topics {
            if !topics.iter().any(|s: &String| s == t.id.as_str()) {
                topics.push(t.id.as_str().to_owned());
                topic_scores.push(t.score);
            }
        }
        let mut places: Vec<String> = Vec::with_capacity(post.places.len());
        for p in &post.places {
            if !places.iter().any(|s| s == p.as_str()) {
                places.push(p.as_str().to_owned());
            }
        }
        let s = &post.sentiment;
        let mut row = PostRow {
            key: post.key(),
            source: post.source.as_str().to_owned(),
            id: post.id.clone(),
            url: post.url.clone().unwrap_or_default(),
            author: post.author.clone(),
            lang: post.lang.as_str().to_owned(),
            lang_declared: post.lang_declared.clone().unwrap_or_default(),
            text_redacted: post.text_redacted.clone(),
            sentiment: s.label.as_str().to_owned(),
            score: s.score,
            p_negative: s.probabilities.negative,
            p_neutral: s.probabilities.neutral,
            p_positive: s.probabilities.positive,
            primary_topic: topics.first().cloned().unwrap_or_default(),
            topics,
            topic_scores,
            places,
            likes: post.engagement.likes,
            shares: post.engagement.shares,
            replies: post.engagement.replies,
            created_at,
            created_ms,
            fetched_at,
            analyzed_at,
            analyzed_ms,
            model_id: post.model.id.clone(),
            model_version: post.model.version.clone(),
            content_hash: 0,
            sign: 1,
            version,
        };
        row.content_hash = row.content_hash();
        Ok(row)
    }

    /// The row that takes this one back: same sorting key, version and labels, sign −1.
    pub fn cancelling(&self) -> Self {
        PostRow { sign: -1, ..self.clone() }
    }

    /// When the analysis was made, in milliseconds: orders analyses of the same post.
    pub fn analyzed_ms_total(&self) -> u64 {
        u64::from(self.analyzed_at) * 1000 + u64::from(self.analyzed_ms)
    }

    /// FNV-1a over the row's JSON without fetch/analysis times and bookkeeping columns: equal for a
    /// redelivery or a re-analysis that changed nothing, so such posts need no write. Stable across
    /// builds (field order is fixed by the struct; FNV has no random seed).
    pub fn content_hash(&self) -> u64 {
        let content = PostRow {
            fetched_at: 0,
            analyzed_at: 0,
            analyzed_ms: 0,
            content_hash: 0,
            sign: 0,
            version: 0,
            ..self.clone()
        };
        // Serialising plain fields to JSON cannot fail; an empty buffer would only weaken dedup.
        let bytes = serde_json::to_vec(&content).unwrap_or_default();
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
    }
}

/// The small part of a stored row the writer reads for every key of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct StoredVersion {
    pub key: String,
    pub version: u64,
    pub sign: i8,
    pub content_hash: u64,
    pub analyzed_at: u32,
    pub analyzed_ms: u16,
}

impl StoredVersion {
    pub fn analyzed_ms_total(&self) -> u64 {
        u64::from(self.analyzed_at) * 1000 + u64::from(self.analyzed_ms)
    }
}
