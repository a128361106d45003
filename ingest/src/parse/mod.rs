//! Source parsers: pure functions from a response body (bytes, as received) to [`Post`]s.
//!
//! - [`mastodon`]: Mastodon status arrays and the `Link` header's paging ids.
//! - [`reddit`]: Reddit listing JSON (`t3` children, the `after` cursor).
//! - [`feed`]: RSS 2.0 and Atom through feed-rs; [`dates`]: the date shapes feeds use.
//! - [`jetstream`]: one Bluesky Jetstream event (WebSocket frame).
//! - [`intake`]: the city's own records (JSON array, NDJSON, CSV) pushed to the intake API or
//!   imported from a file, each with its own outcome.
//! - [`replay`]: one JSONL line in the Kafka envelope, through `schema::decode`.
//!
//! A response that cannot be read at all is a [`ParseError`]; one bad item in a good response is an
//! [`ItemError`] next to the good posts, so one hostile item never costs the rest of the page. No
//! parser panics on any input (property tests feed them arbitrary bytes).

pub mod dates;
pub mod feed;
pub mod intake;
pub mod jetstream;
pub mod mastodon;
pub mod reddit;
pub mod replay;

use chrono::{DateTime, Utc};
use schema::author::AuthorHasher;
use schema::envelope::ValidationError;
use schema::{Limits, Post, SourceId};

/// What every parser needs besides the body.
#[derive(Debug, Clone, Copy)]
pub struct ParseCtx<'a> {
    pub source: &'a SourceId,
    pub hasher: &'a AuthorHasher,
    pub limits: &'a Limits,
    pub fetched_at: DateTime<Utc>,
    /// The city's time zone: how a feed time without a zone is read.
    pub zone: chrono_tz::Tz,
}

/// A response that could not be read at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("response is {bytes} bytes, over the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("response is not valid JSON: {0}")]
    Json(String),
    #[error("response JSON has an unexpected shape: {0}")]
    Shape(String),
    #[error("feed is not valid RSS or Atom: {0}")]
    Feed(String),
}

impl ParseError {
    /// Short stable name for the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::TooLarge { .. } => "too_large",
            ParseError::Json(_) => "malformed",
            ParseError::Shape(_) => "shape",
            ParseError::Feed(_) => "feed",
        }
    }
}

/// One item of a readable response that did not become a post.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ItemError {
    #[error("item has an unexpected shape: {0}")]
    Shape(String),
    #[error("item has no {0}")]
    Missing(&'static str),
    #[error("item timestamp {0:?} is not readable")]
    BadTime(String),
    #[error("item has no text after HTML stripping")]
    EmptyText,
    #[error("item is not public (visibility {0:?})")]
    NotPublic(String),
    #[error(transparent)]
    Rejected(#[from] ValidationError),
    #[error(transparent)]
    Decode(#[from] schema::DecodeError),
}

impl ItemError {
    /// Short stable name for the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemError::Shape(_) => "shape",
            ItemError::Missing(_) => "missing_field",
            ItemError::BadTime(_) => "bad_time",
            ItemError::EmptyText => "empty_text",
            ItemError::NotPublic(_) => "not_public",
            ItemError::Rejected(_) => "rejected",
            ItemError::Decode(e) => e.kind(),
        }
    }
}

/// The posts of one response and the items that failed.
#[derive(Debug, Clone, Default)]
pub struct Items {
    pub posts: Vec<Post>,
    pub errors: Vec<ItemError>,
}

impl Items {
    fn push(&mut self, item: Result<Post, ItemError>) {
        match item {
            Ok(post) => self.posts.push(post),
            Err(err) => self.errors.push(err),
        }
    }
}

/// Refuses bodies over the configured size before any parsing work.
fn check_size(body: &[u8], ctx: &ParseCtx<'_>) -> Result<(), ParseError> {
    // A page holds many posts; the message limit times a generous page size bounds it.
    let max = ctx.limits.max_message_bytes.saturating_mul(200);
    if body.len() > max {
        return Err(ParseError::TooLarge { bytes: body.len(), max });
    }
    Ok(())
}

/// Whether `text` holds anything but white space and invisible format characters: media-only
/// Mastodon posts carry `<p>\u{2063}</p>` (an invisible separator) as their content.
fn has_visible_text(text: &str) -> bool {
    const INVISIBLE: [char; 9] =
        ['\u{ad}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{feff}'];
    text.chars().any(|c| !c.is_whitespace() && !INVISIBLE.contains(&c))
}

/// Builds and validates a post: the last step of every parser.
#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &ParseCtx<'_>,
    id: String,
    url: Option<String>,
    handle: &str,
    text: String,
    lang: Option<String>,
    created_at: DateTime<Utc>,
    engagement: schema::Engagement,
) -> Result<Post, ItemError> {
    if !has_visible_text(&text) {
        return Err(ItemError::EmptyText);
    }
    let post = Post {
        id,
        source: ctx.source.clone(),
        url,
        author: ctx.hasher.pseudonym(ctx.source.as_str(), handle),
        text,
        lang: lang.filter(|l| !l.is_empty() && l.len() <= 35),
        created_at,
        fetched_at: ctx.fetched_at,
        places: Vec::new(),
        engagement,
        created_at_estimated: false,
    };
    post.validate(ctx.limits)?;
    Ok(post)
}

fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, ItemError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| ItemError::BadTime(cut(s)))
}

/// At most 64 chars of untrusted input, for error messages.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod visible_text_tests {
    #[test]
    fn only_invisible_characters_is_no_text() {
        assert!(!super::has_visible_text(" \u{2063}\n\u{200b} \u{feff}"));
        assert!(super::has_visible_text("\u{2063}Ngập"));
        // A zero-width joiner inside a word (emoji sequences, some scripts) keeps the word.
        assert!(super::has_visible_text("a\u{200d}b"));
    }
}

#[cfg(test)]
pub(crate) mod test_ctx {
    use super::*;
    use std::sync::LazyLock;

    pub static SOURCE: LazyLock<SourceId> = LazyLock::new(|| SourceId::new("test_source").unwrap());
    pub static HASHER: LazyLock<AuthorHasher> = LazyLock::new(AuthorHasher::development);
    pub static LIMITS: LazyLock<Limits> = LazyLock::new(Limits::default);

    pub fn ctx() -> ParseCtx<'static> {
        ParseCtx {
            source: &SOURCE,
            hasher: &HASHER,
            limits: &LIMITS,
            fetched_at: Utc::now(),
            zone: chrono_tz::Asia::Ho_Chi_Minh,
        }
    }

    pub fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }
}
