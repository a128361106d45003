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
    /// 1 when `created_at` is the fetch time (migration 004); such rows stay out of the trend cubes.
    /// Not part of [`PostRow::content_hash`]: an estimated time already differs between fetches.
    pub created_at_estimated: u8,
    /// The text's words for saved searches (migration 008, [`schema::terms::SearchIndex`]); derived
    /// from `text_redacted`, so not part of the content hash.
    pub search_words: String,
    pub search_folded: String,
    pub search_accented: u8,
    /// [`schema::terms::SEARCH_INDEX_VERSION`]; 0 on rows stored before migration 008.
    pub search_index: u8,
}

/// One row of `post_embeddings` (migration 007): the quantised embedding of a post no topic claimed.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EmbeddingRow {
    pub key: String,
    pub created_at: u32,
    pub model_version: String,
    pub embedding: Vec<i8>,
    pub analyzed_at: u32,
}

impl EmbeddingRow {
    /// The embedding row of `row`'s post, taking `embedding`.
    pub fn of(row: &PostRow, embedding: schema::Int8Embedding) -> Self {
        EmbeddingRow {
            key: row.key.clone(),
            created_at: row.created_at,
            model_version: row.model_version.clone(),
            embedding: embedding.0,
            analyzed_at: row.analyzed_at,
        }
    }
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
    /// The live (+1) row for `post`, moving its strings (no copies: this runs for every post).
    /// With the search index the analyzer attached, when its encoding is this build's; otherwise
    /// without, and the writer makes it ([`PostRow::index_for_search`]) only for the rows it
    /// writes, since most redelivered posts are not.
    /// Topics and places are de-duplicated, keeping their order, so a post never counts twice in
    /// one trend cell.
    pub fn from_post(post: AnalyzedPost, version: u64) -> Result<Self, RowError> {
        let (created_at, created_ms) = seconds("created_at", &post.created_at)?;
        let (fetched_at, _) = seconds("fetched_at", &post.fetched_at)?;
        let (analyzed_at, analyzed_ms) = seconds("analyzed_at", &post.analyzed_at)?;
        let key = post.key();
        let search = post.search.and_then(schema::WireSearchIndex::into_current);
        let mut topics: Vec<String> = Vec::with_capacity(post.topics.len());
        let mut topic_scores = Vec::with_capacity(post.topics.len());
        for t in post.topics {
            if !topics.iter().any(|s| s == t.id.as_str()) {
                topics.push(t.id.into());
                topic_scores.push(t.score);
            }
        }
        let mut places: Vec<String> = Vec::with_capacity(post.places.len());
        for p in post.places {
            if !places.iter().any(|s| s == p.as_str()) {
                places.push(p.into());
            }
        }
        let s = &post.sentiment;
        let mut row = PostRow {
            key,
            source: post.source.into(),
            id: post.id,
            url: post.url.unwrap_or_default(),
            author: post.author,
            lang: post.lang.as_str().to_owned(),
            lang_declared: post.lang_declared.unwrap_or_default(),
            text_redacted: post.text_redacted,
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
            model_id: post.model.id,
            model_version: post.model.version,
            content_hash: 0,
            sign: 1,
            version,
            created_at_estimated: u8::from(post.created_at_estimated),
            search_words: String::new(),
            search_folded: String::new(),
            search_accented: 0,
            search_index: 0,
        };
        if let Some(index) = search {
            row.set_search_index(index);
        }
        row.content_hash = row.content_hash();
        Ok(row)
    }

    /// Fills the search columns from `text_redacted`.
    pub fn index_for_search(&mut self) {
        self.set_search_index(schema::terms::search_index(&self.text_redacted));
    }

    fn set_search_index(&mut self, index: schema::terms::SearchIndex) {
        self.search_words = index.words;
        self.search_folded = index.folded;
        self.search_accented = u8::from(index.accented);
        self.search_index = schema::terms::SEARCH_INDEX_VERSION;
    }

    /// The row that takes this one back: same sorting key, version and labels, sign −1.
    pub fn cancelling(&self) -> Self {
        PostRow { sign: -1, ..self.clone() }
    }

    /// When the analysis was made, in milliseconds: orders analyses of the same post.
    pub fn analyzed_ms_total(&self) -> u64 {
        u64::from(self.analyzed_at) * 1000 + u64::from(self.analyzed_ms)
    }

    /// xxh3 over the row's content: every field but fetch/analysis times and bookkeeping columns,
    /// so a redelivery or a re-analysis that changed nothing hashes equal and needs no write.
    /// Stable across builds (fixed field order, fixed seed; a test pins it). Each string and list
    /// is length-prefixed, so moving bytes between fields changes the hash.
    ///
    /// Why not the first hash ([`Self::legacy_content_hash`], FNV-1a over the JSON): it walked
    /// every byte of a serialized copy one multiply at a time and was a quarter of the writer's
    /// CPU. Rows stored with it still compare equal: the writer falls back to it on a mismatch.
    pub fn content_hash(&self) -> u64 {
        CONTENT_BYTES.with_borrow_mut(|bytes| {
            bytes.clear();
            let mut h = ContentBytes(bytes);
            for s in [&self.key, &self.source, &self.id, &self.url, &self.author, &self.lang, &self.lang_declared] {
                h.str(s);
            }
            h.str(&self.text_redacted);
            h.str(&self.sentiment);
            for p in [self.score, self.p_negative, self.p_neutral, self.p_positive] {
                h.put(&p.to_bits().to_le_bytes());
            }
            h.strs(&self.topics);
            h.put(&(self.topic_scores.len() as u64).to_le_bytes());
            for s in &self.topic_scores {
                h.put(&s.to_bits().to_le_bytes());
            }
            h.str(&self.primary_topic);
            h.strs(&self.places);
            for n in [self.likes, self.shares, self.replies] {
                h.put(&[u8::from(n.is_some())]);
                h.put(&n.unwrap_or(0).to_le_bytes());
            }
            h.put(&self.created_at.to_le_bytes());
            h.put(&self.created_ms.to_le_bytes());
            h.str(&self.model_id);
            h.str(&self.model_version);
            twox_hash::XxHash3_64::oneshot_with_seed(0, bytes)
        })
    }

    /// The content hash as first shipped: FNV-1a over the row's JSON (the same fields, the excluded
    /// ones as zero). Rows stored before the switch carry it, so the writer compares against it
    /// when [`Self::content_hash`] differs; only then is it computed.
    pub fn legacy_content_hash(&self) -> u64 {
        let mut fnv = Fnv(0xcbf2_9ce4_8422_2325);
        // Writing plain fields into a hasher cannot fail; a failure would only weaken dedup.
        let _ = serde_json::to_writer(&mut fnv, &Content::of(self));
        fnv.0
    }
}

thread_local! {
    /// The bytes [`PostRow::content_hash`] hashes, kept between calls so a batch allocates once.
    static CONTENT_BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The input of [`PostRow::content_hash`], with length-prefixed strings. Gathered, then hashed in
/// one call: streaming xxh3 gives the same value, but its ~40 small writes made the hash 310 ns a
/// post instead of 120 (measured on rows shaped like the store bench's posts, release), 15% of the writer's CPU.
struct ContentBytes<'a>(&'a mut Vec<u8>);

impl ContentBytes<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn str(&mut self, s: &str) {
        self.put(&(s.len() as u64).to_le_bytes());
        self.put(s.as_bytes());
    }

    fn strs(&mut self, list: &[String]) {
        self.put(&(list.len() as u64).to_le_bytes());
        for s in list {
            self.str(s);
        }
    }
}

/// FNV-1a 64 as an `io::Write` sink.
struct Fnv(u64);

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = buf.iter().fold(self.0, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The hashed view of a [`PostRow`]: the same fields in the same order with the excluded ones as
/// zero, so its JSON is byte for byte that of the row with those fields zeroed (the hashes already
/// stored in ClickHouse stay valid; a test pins this).
#[derive(Serialize)]
struct Content<'a> {
    key: &'a str,
    source: &'a str,
    id: &'a str,
    url: &'a str,
    author: &'a str,
    lang: &'a str,
    lang_declared: &'a str,
    text_redacted: &'a str,
    sentiment: &'a str,
    score: f32,
    p_negative: f32,
    p_neutral: f32,
    p_positive: f32,
    topics: &'a [String],
    topic_scores: &'a [f32],
    primary_topic: &'a str,
    places: &'a [String],
    likes: Option<u64>,
    shares: Option<u64>,
    replies: Option<u64>,
    created_at: u32,
    created_ms: u16,
    fetched_at: u32,
    analyzed_at: u32,
    analyzed_ms: u16,
    model_id: &'a str,
    model_version: &'a str,
    content_hash: u64,
    sign: i8,
    version: u64,
}

impl<'a> Content<'a> {
    fn of(r: &'a PostRow) -> Self {
        Content {
            key: &r.key,
            source: &r.source,
            id: &r.id,
            url: &r.url,
            author: &r.author,
            lang: &r.lang,
            lang_declared: &r.lang_declared,
            text_redacted: &r.text_redacted,
            sentiment: &r.sentiment,
            score: r.score,
            p_negative: r.p_negative,
            p_neutral: r.p_neutral,
            p_positive: r.p_positive,
            topics: &r.topics,
            topic_scores: &r.topic_scores,
            primary_topic: &r.primary_topic,
            places: &r.places,
            likes: r.likes,
            shares: r.shares,
            replies: r.replies,
            created_at: r.created_at,
            created_ms: r.created_ms,
            fetched_at: 0,
            analyzed_at: 0,
            analyzed_ms: 0,
            model_id: &r.model_id,
            model_version: &r.model_version,
            content_hash: 0,
            sign: 0,
            version: 0,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`the_streamed_hash_equals_the_shipped_one`]'s row hashes: the row's JSON with the
    /// bookkeeping columns zeroed.
    const PINNED_JSON: &str = r#"{"key":"m:1","source":"m","id":"1","url":"https://x/\"q\"","author":"a","lang":"vi","lang_declared":"","text_redacted":"Đường ngập\n🌊 'x'","sentiment":"negative","score":-0.25,"p_negative":0.5,"p_neutral":0.25,"p_positive":0.25,"topics":["flooding","traffic"],"topic_scores":[0.9,0.1],"primary_topic":"flooding","places":["quan_1"],"likes":3,"shares":null,"replies":0,"created_at":1764000000,"created_ms":7,"fetched_at":0,"analyzed_at":0,"analyzed_ms":0,"model_id":"e5","model_version":"v1","content_hash":0,"sign":0,"version":0}"#;
    const PINNED_HASH: u64 = 7_829_491_428_981_339_859;
    /// [`PostRow::content_hash`] of the same row.
    const CONTENT_HASH: u64 = 7_471_423_589_274_756_387;

    /// The hash as first shipped (JSON of a zeroed clone): stored rows carry it, so it must not move.
    fn reference_hash(r: &PostRow) -> u64 {
        let content = PostRow {
            fetched_at: 0,
            analyzed_at: 0,
            analyzed_ms: 0,
            content_hash: 0,
            sign: 0,
            version: 0,
            ..r.clone()
        };
        // Columns added after the hash shipped (created_at_estimated, migration 004; the search
        // columns, 008) are not part
        // of it: the shipped JSON ended at `version`.
        let json = serde_json::to_string(&content)
            .expect("json")
            .replace(",\"created_at_estimated\":0", "")
            .replace(",\"search_words\":\"\",\"search_folded\":\"\",\"search_accented\":0,\"search_index\":0", "");
        json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// The row both hash tests pin.
    fn pinned_row() -> PostRow {
        PostRow {
            key: "m:1".into(),
            source: "m".into(),
            id: "1".into(),
            url: "https://x/\"q\"".into(),
            author: "a".into(),
            lang: "vi".into(),
            lang_declared: String::new(),
            text_redacted: "Đường ngập\n\u{1F30A} 'x'".into(),
            sentiment: "negative".into(),
            score: -0.25,
            p_negative: 0.5,
            p_neutral: 0.25,
            p_positive: 0.25,
            topics: vec!["flooding".into(), "traffic".into()],
            topic_scores: vec![0.9, 0.1],
            primary_topic: "flooding".into(),
            places: vec!["quan_1".into()],
            likes: Some(3),
            shares: None,
            replies: Some(0),
            created_at: 1_764_000_000,
            created_ms: 7,
            fetched_at: 1_764_000_001,
            analyzed_at: 1_764_000_002,
            analyzed_ms: 9,
            model_id: "e5".into(),
            model_version: "v1".into(),
            content_hash: 0,
            sign: 1,
            version: 4,
            created_at_estimated: 0,
            search_words: String::new(),
            search_folded: String::new(),
            search_accented: 0,
            search_index: 0,
        }
    }

    #[test]
    fn the_legacy_hash_equals_the_shipped_one() {
        let mut r = pinned_row();
        assert_eq!(r.legacy_content_hash(), reference_hash(&r));
        // Pinned to constants as well: the reference above is computed from today's `PostRow`, so a
        // field added to both would move both hashes together, and every stored hash would then
        // differ from a recomputed one (each redelivery rewritten as a change). These are the
        // values of the code as first shipped.
        assert_eq!(serde_json::to_string(&Content::of(&r)).expect("json"), PINNED_JSON, "the hashed content changed");
        assert_eq!(r.legacy_content_hash(), PINNED_HASH);
        r.likes = None;
        r.places.clear();
        assert_eq!(r.legacy_content_hash(), reference_hash(&r));
    }

    #[test]
    fn the_content_hash_is_pinned_and_sees_every_content_field() {
        let r = pinned_row();
        // Pinned: every stored row carries this hash, so a change would rewrite every redelivery.
        assert_eq!(r.content_hash(), CONTENT_HASH);
        let changed: [PostRow; 8] = [
            PostRow { text_redacted: "Đường ngập\n".into(), ..r.clone() },
            PostRow { score: -0.5, ..r.clone() },
            PostRow { topics: vec!["flooding".into()], ..r.clone() },
            PostRow { topic_scores: vec![0.9, 0.2], ..r.clone() },
            PostRow { likes: None, ..r.clone() },
            PostRow { replies: None, ..r.clone() },
            PostRow { model_version: "v2".into(), ..r.clone() },
            // Bytes moved from one field to the next: length prefixes keep these apart.
            PostRow { key: "m:".into(), source: "1m".into(), ..r.clone() },
        ];
        for (i, c) in changed.iter().enumerate() {
            assert_ne!(c.content_hash(), CONTENT_HASH, "change {i} went unseen");
        }
        let bookkeeping = PostRow {
            fetched_at: 9,
            analyzed_at: 9,
            analyzed_ms: 9,
            sign: -1,
            version: 7,
            created_at_estimated: 1,
            ..r.clone()
        };
        assert_eq!(bookkeeping.content_hash(), CONTENT_HASH);
    }
}
