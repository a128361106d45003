//! [`AnalyzedPost`]: a post after the classifier. Published to Kafka `posts.analyzed` and stored in
//! ClickHouse. It carries `text_redacted` only: raw text never travels past `posts.raw`.

use crate::envelope::{Limits, ValidationError};
use crate::ids::{PlaceId, SourceId, TopicId};
use crate::post::{post_key, validate_common, Engagement};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Detected language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Vi,
    En,
    Other,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
            Lang::Other => "other",
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sentiment class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub const ALL: [SentimentLabel; 3] = [SentimentLabel::Negative, SentimentLabel::Neutral, SentimentLabel::Positive];

    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Negative => "negative",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Positive => "positive",
        }
    }

    /// Parses the labelled-TSV spelling (`negative|neutral|positive`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s.trim())
    }
}

/// Class probabilities; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SentimentProbabilities {
    pub negative: f32,
    pub neutral: f32,
    pub positive: f32,
}

/// Sentiment of one post.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// P(positive) − P(negative), in [−1, 1].
    pub score: f32,
    pub probabilities: SentimentProbabilities,
}

impl Sentiment {
    /// Builds the label (argmax) and score from probabilities.
    pub fn from_probabilities(p: SentimentProbabilities) -> Self {
        let label = if p.negative >= p.neutral && p.negative >= p.positive {
            SentimentLabel::Negative
        } else if p.positive >= p.neutral {
            SentimentLabel::Positive
        } else {
            SentimentLabel::Neutral
        };
        Sentiment { label, score: (p.positive - p.negative).clamp(-1.0, 1.0), probabilities: p }
    }
}

/// One topic with its score (cosine-derived, higher is stronger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicScore {
    pub id: TopicId,
    pub score: f32,
}

/// Which model produced the labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// e.g. `multilingual-e5-small`.
    pub id: String,
    /// Encoder + heads version, e.g. `e5s-q4+sent-2026-11-26`.
    pub version: String,
}

/// A post with its labels; no raw text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzedPost {
    pub id: String,
    pub source: SourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub author: String,
    /// Language as the source declared it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang_declared: Option<String>,
    pub created_at: DateTime<Utc>,
    pub fetched_at: DateTime<Utc>,
    #[serde(default)]
    pub places: Vec<PlaceId>,
    #[serde(default)]
    pub engagement: Engagement,
    /// Copied from [`crate::Post::created_at_estimated`].
    #[serde(default, skip_serializing_if = "crate::post::is_false")]
    pub created_at_estimated: bool,
    /// Text with phone numbers, e-mail addresses, ID and card numbers removed.
    pub text_redacted: String,
    /// Detected language.
    pub lang: Lang,
    pub sentiment: Sentiment,
    /// Ranked, multi-label; `[other]` when nothing passes its threshold.
    pub topics: Vec<TopicScore>,
    pub model: ModelInfo,
    pub analyzed_at: DateTime<Utc>,
    /// The encoder's embedding, quantised, for posts no topic claims with confidence (the
    /// emerging-issues job groups them by meaning); absent otherwise. Derived from the redacted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<crate::Int8Embedding>,
    /// The redacted text's search index ([`crate::terms::search_index`]), made by the analyzer
    /// (schema 1.3) so that the store's writer, one process for every post, does not tokenise:
    /// here it is ~9 µs beside the encoder's 4-9 ms of CPU per post, there it was twice ClickHouse's own CPU per
    /// post. Absent from older analyzers; the writer then makes it itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<WireSearchIndex>,
}

/// [`crate::terms::SearchIndex`] on the wire, with the version of its encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSearchIndex {
    /// [`crate::terms::SEARCH_INDEX_VERSION`] of the analyzer that made it; a store of another
    /// version makes its own.
    pub version: u8,
    pub words: String,
    /// Absent when equal to `words` (a text without diacritics), which halves most messages' share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded: Option<String>,
    pub accented: bool,
}

impl WireSearchIndex {
    /// The index of `text_redacted`, as the analyzer attaches it.
    pub fn of(text_redacted: &str) -> Self {
        let index = crate::terms::search_index(text_redacted);
        let folded = (index.folded != index.words).then_some(index.folded);
        WireSearchIndex {
            version: crate::terms::SEARCH_INDEX_VERSION,
            words: index.words,
            folded,
            accented: index.accented,
        }
    }

    /// The index, when its encoding is this build's; None for another version.
    pub fn into_current(self) -> Option<crate::terms::SearchIndex> {
        (self.version == crate::terms::SEARCH_INDEX_VERSION).then(|| crate::terms::SearchIndex {
            folded: self.folded.unwrap_or_else(|| self.words.clone()),
            words: self.words,
            accented: self.accented,
        })
    }
}

impl AnalyzedPost {
    pub fn key(&self) -> String {
        post_key(&self.source, &self.id)
    }

    pub fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        validate_common(&self.id, &self.author, &self.created_at, &self.fetched_at, limits)?;
        if self.text_redacted.len() > limits.max_text_bytes {
            return Err(ValidationError::TextTooLong { bytes: self.text_redacted.len(), max: limits.max_text_bytes });
        }
        if !(-1.0..=1.0).contains(&self.sentiment.score) || self.topics.is_empty() {
            return Err(ValidationError::BadLabels);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentiment_from_probabilities_takes_argmax_and_score() {
        let s = Sentiment::from_probabilities(SentimentProbabilities { negative: 0.1, neutral: 0.2, positive: 0.7 });
        assert_eq!(s.label, SentimentLabel::Positive);
        assert!((s.score - 0.6).abs() < 1e-6);
        let s = Sentiment::from_probabilities(SentimentProbabilities { negative: 0.2, neutral: 0.5, positive: 0.3 });
        assert_eq!(s.label, SentimentLabel::Neutral);
    }

    /// The encoding of version 1, pinned: the analyzer makes the index and the store trusts it by
    /// its version, so a change to the tokeniser that moves this must raise SEARCH_INDEX_VERSION
    /// (and `citypulse searches reindex` then rewrites the older posts).
    #[test]
    fn the_search_index_encoding_of_this_version_is_pinned() {
        assert_eq!(crate::terms::SEARCH_INDEX_VERSION, 1);
        let index = crate::terms::search_index("Kẹt xe ở Q.1, ngập nặng!! Đi đâu_đây? Giá 3,5 triệu. Don't");
        assert_eq!(index.words, " kẹt xe ở q | 1 | ngập nặng | đi đâu đây | giá 3,5 triệu | don't ");
        assert_eq!(index.folded, " ket xe o q | 1 | ngap nang | di dau day | gia 3,5 trieu | don't ");
        assert!(index.accented);
    }

    #[test]
    fn the_wire_search_index_is_the_texts_and_names_its_version() {
        for text in ["Đường Nguyễn Hữu Cảnh ngập, kẹt xe!", "duong ngap ket xe", ""] {
            let wire = WireSearchIndex::of(text);
            let json = serde_json::to_string(&wire).unwrap();
            // A text without diacritics sends its words once.
            assert_eq!(json.contains("folded"), crate::terms::search_index(text).accented, "{json}");
            let back: WireSearchIndex = serde_json::from_str(&json).unwrap();
            assert_eq!(back.clone().into_current(), Some(crate::terms::search_index(text)), "{text}");
            let other = WireSearchIndex { version: crate::terms::SEARCH_INDEX_VERSION + 1, ..back };
            assert_eq!(other.into_current(), None, "another encoding is not taken");
        }
    }

    #[test]
    fn labels_parse_tsv_spelling() {
        assert_eq!(SentimentLabel::parse("positive "), Some(SentimentLabel::Positive));
        assert_eq!(SentimentLabel::parse("pos"), None);
    }
}
