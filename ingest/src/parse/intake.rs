//! The city's own records (the 1022 hotline, a ward's app), as a channel pushes them to
//! `POST /api/v1/intake/{channel}` or an operator imports them (`citypulse import`): a JSON array,
//! NDJSON or CSV of `id`, `text`, `created_at` and optional `place`, `category`, `author`. Other
//! fields are ignored (a channel's export carries more than we need).
//!
//! [`RecordReader`] reads NDJSON and CSV as a stream (a file of millions of lines) and says how many
//! bytes it has read (the import's progress); [`read_json_array`] reads a JSON array. Each record
//! is read on its own: a bad row is a [`RecordError`] in its place, never the end of the batch.
//! [`to_post`] turns a record into a [`Post`]: the author pseudonymised, the time read as feeds'
//! times are (a time without a zone is the city's), places from the `place` field (an id, or
//! free text through the gazetteer) and from the text.

use super::dates::feed_timestamp;
use super::{ItemError, ParseCtx};
use crate::places::Gazetteer;
use schema::envelope::ValidationError;
use schema::{PlaceId, Post};
use std::collections::HashMap;
use std::io::BufRead;
use unicode_normalization::UnicodeNormalization;

/// How a body or file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    /// From a `Content-Type` (parameters such as `charset` ignored).
    pub fn from_content_type(value: &str) -> Option<Format> {
        match value.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "application/json" => Some(Format::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/jsonlines" => {
                Some(Format::Ndjson)
            }
            "text/csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// From a file name: `.csv`, or `.jsonl` / `.ndjson`.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// One record as the channel wrote it, every field as text: ids keep their leading zeros, and a
/// number where text was expected (a phone exported as a number) is read as its digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeRecord {
    pub id: String,
    pub text: String,
    pub created_at: String,
    pub place: Option<String>,
    pub category: Option<String>,
    pub author: Option<String>,
}

impl IntakeRecord {
    /// Builds a record from a field lookup. Errors name the field, never its value (an author's
    /// phone must not end up in an answer or a rejects file).
    fn from_fields(field: impl Fn(&str) -> Result<Option<String>, RecordError>) -> ReadRecord {
        let required = |name: &'static str| field(name)?.ok_or(RecordError::Missing(name));
        let optional =
            |name: &str| Ok::<_, RecordError>(field(name)?.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()));
        Ok(IntakeRecord {
            id: required("id")?,
            text: required("text")?,
            created_at: required("created_at")?,
            place: optional("place")?,
            category: optional("category")?,
            author: optional("author")?,
        })
    }

    /// From a JSON object: strings, or numbers as written.
    fn from_json(value: serde_json::Value) -> ReadRecord {
        let serde_json::Value::Object(map) = value else {
            return Err(RecordError::Malformed("not a JSON object".into()));
        };
        Self::from_fields(|name| match map.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(RecordError::Malformed(format!("{name} must be a string or a number"))),
        })
    }
}

/// Why a whole body cannot be read (every record then gets no answer but this one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not a JSON array of records: {0}")]
    NotAnArray(String),
    #[error("the CSV header must name the columns id, text and created_at (found: {0})")]
    CsvHeader(String),
    #[error("cannot read the input: {0}")]
    Io(String),
}

/// Why one record was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("not a record: {0}")]
    Malformed(String),
    #[error("no {0}")]
    Missing(&'static str),
    #[error("a line or row of {0} bytes, over the limit")]
    TooLong(usize),
    #[error("created_at {0:?} is not a time (RFC 3339, or YYYY-MM-DD HH:MM[:SS] in the city's time zone)")]
    BadTime(String),
    #[error("text is empty")]
    EmptyText,
    #[error("id is empty")]
    EmptyId,
    #[error(transparent)]
    Rejected(#[from] ValidationError),
}

/// `finish` refuses a post for empty text or a failed validation; nothing else reaches here.
impl From<ItemError> for RecordError {
    fn from(e: ItemError) -> Self {
        match e {
            ItemError::EmptyText => RecordError::EmptyText,
            ItemError::Rejected(v) => RecordError::Rejected(v),
            other => RecordError::Malformed(other.to_string()),
        }
    }
}

impl RecordError {
    /// Short stable name for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::Malformed(_) | RecordError::Missing(_) => "malformed",
            RecordError::TooLong(_) => "too_long",
            RecordError::BadTime(_) => "bad_time",
            RecordError::EmptyText => "empty_text",
            RecordError::EmptyId => "empty_id",
            RecordError::Rejected(ValidationError::TextTooLong { .. }) => "text_too_long",
            RecordError::Rejected(ValidationError::BadId(_)) => "bad_id",
            RecordError::Rejected(ValidationError::BadTimestamp { .. }) => "bad_time",
            RecordError::Rejected(_) => "rejected",
        }
    }
}

/// A record read, or why it could not be.
pub type ReadRecord = Result<IntakeRecord, RecordError>;

/// Every element of a JSON array, each parsed on its own.
pub fn read_json_array(body: &[u8]) -> Result<Vec<ReadRecord>, BodyError> {
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| BodyError::NotAnArray(e.to_string()))?;
    Ok(values.into_iter().map(IntakeRecord::from_json).collect())
}

/// NDJSON or CSV records from a reader, one at a time, with the bytes read so far.
pub struct RecordReader<R: BufRead> {
    kind: Kind<R>,
    /// Longest line or row taken, bytes; a longer one is a [`RecordError::TooLong`].
    max_record_bytes: usize,
}

enum Kind<R: BufRead> {
    Lines { reader: R, read: u64, line: Vec<u8> },
    Csv { csv: Box<csv::Reader<R>>, columns: HashMap<String, usize> },
}

impl<R: BufRead> RecordReader<R> {
    /// A reader of NDJSON or CSV (a JSON array is read whole by [`read_json_array`]). For CSV the
    /// header is read and checked here.
    pub fn new(reader: R, format: Format, max_record_bytes: usize) -> Result<Self, BodyError> {
        let kind = match format {
            Format::Csv => {
                let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
                let headers = csv.headers().map_err(|e| BodyError::Io(e.to_string()))?.clone();
                let columns: HashMap<String, usize> =
                    headers.iter().enumerate().map(|(i, h)| (h.trim().to_owned(), i)).collect();
                if !["id", "text", "created_at"].iter().all(|want| columns.contains_key(*want)) {
                    return Err(BodyError::CsvHeader(headers.iter().collect::<Vec<_>>().join(",")));
                }
                Kind::Csv { csv: Box::new(csv), columns }
            }
            Format::Ndjson => Kind::Lines { reader, read: 0, line: Vec::new() },
            Format::Json => return Err(BodyError::NotAnArray("a JSON array is read whole, not as a stream".into())),
        };
        Ok(RecordReader { kind, max_record_bytes })
    }

    /// Bytes of the input consumed so far.
    pub fn position(&self) -> u64 {
        match &self.kind {
            Kind::Lines { read, .. } => *read,
            Kind::Csv { csv, .. } => csv.position().byte(),
        }
    }

    /// The next record; `None` at the end. A read error of the input itself ends the stream with
    /// `Some(Err(BodyError))`.
    pub fn next_record(&mut self) -> Option<Result<ReadRecord, BodyError>> {
        let max = self.max_record_bytes;
        match &mut self.kind {
            Kind::Lines { reader, read, line } => loop {
                let (n, whole) = match read_line_within(reader, line, max) {
                    Ok((0, _)) => return None,
                    Ok(got) => got,
                    Err(e) => return Some(Err(BodyError::Io(e.to_string()))),
                };
                *read += n as u64;
                if !whole {
                    return Some(Ok(Err(RecordError::TooLong(n))));
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let record = match serde_json::from_slice(line) {
                    Ok(value) => IntakeRecord::from_json(value),
                    Err(e) => Err(RecordError::Malformed(e.to_string())),
                };
                return Some(Ok(record));
            },
            Kind::Csv { csv, columns } => {
                let mut row = csv::StringRecord::new();
                match csv.read_record(&mut row) {
                    Ok(false) => None,
                    Ok(true) if row.as_slice().len() > max => Some(Ok(Err(RecordError::TooLong(row.as_slice().len())))),
                    Ok(true) => Some(Ok(IntakeRecord::from_fields(|name| {
                        Ok(columns.get(name).and_then(|&i| row.get(i)).map(str::to_owned))
                    }))),
                    // Bad UTF-8 in a row is that row's problem. (A quote that is never closed
                    // makes the rest of the file one row: over the size limit, rejected as one.)
                    Err(e) if e.is_io_error() => Some(Err(BodyError::Io(e.to_string()))),
                    Err(e) => Some(Ok(Err(RecordError::Malformed(e.to_string())))),
                }
            }
        }
    }
}

/// Reads one line into `line`, keeping at most `max` bytes of it: (bytes consumed, whether the
/// whole line fitted). A longer line is consumed to its end but not kept, so a file without line
/// breaks costs `max` bytes of memory, not its size.
fn read_line_within<R: BufRead>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> std::io::Result<(usize, bool)> {
    line.clear();
    let mut consumed = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, line.len() <= max));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if line.len() <= max {
            line.extend_from_slice(&chunk[..chunk.len().min(max + 1 - line.len())]);
        }
        let n = chunk.len();
        reader.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, line.len() <= max));
        }
    }
}

/// What turning a record into a post needs: what every parser needs (the channel as the source,
/// the receipt time as the fetch time) and the gazetteer.
#[derive(Debug, Clone, Copy)]
pub struct IntakeCtx<'a> {
    pub parse: ParseCtx<'a>,
    pub gazetteer: &'a Gazetteer,
}

/// A record taken: the post for `posts.raw`, the channel's own category, and what was odd about it
/// (a place the gazetteer does not know) for the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakePost {
    pub post: Post,
    pub category: Option<String>,
    pub warning: Option<String>,
}

/// Checks a record and builds its post through the parsers' own last step (`finish`: visible
/// text, the pseudonymised author, validation). Records carry no author → one anonymous author per
/// channel.
pub fn to_post(record: IntakeRecord, ctx: &IntakeCtx<'_>) -> Result<IntakePost, RecordError> {
    let id = record.id.trim().to_owned();
    if id.is_empty() {
        return Err(RecordError::EmptyId);
    }
    let text: String = record.text.trim().nfc().collect();
    let created_at = feed_timestamp(&record.created_at, ctx.parse.zone)
        .ok_or_else(|| RecordError::BadTime(record.created_at.chars().take(64).collect()))?;
    let author = record.author.as_deref().unwrap_or("");
    let mut post = super::finish(&ctx.parse, id, None, author, text, None, created_at, Default::default())?;
    let (mut places, warning) = match &record.place {
        Some(place) => named_place(place, ctx.gazetteer),
        None => (Vec::new(), None),
    };
    for p in ctx.gazetteer.places_in(&post.text) {
        if !places.contains(&p) {
            places.push(p);
        }
    }
    post.places = places;
    Ok(IntakePost { post, category: record.category, warning })
}

/// The `place` field: a configured id, else the places its text names; neither is a warning, not
/// a rejection (the report itself still counts).
fn named_place(place: &str, gazetteer: &Gazetteer) -> (Vec<PlaceId>, Option<String>) {
    if let Some(id) = gazetteer.place_id(place) {
        return (vec![id.clone()], None);
    }
    let found = gazetteer.places_in(place);
    let warning = found.is_empty().then(|| {
        let shown: String = place.chars().take(64).collect();
        format!("place {shown:?} is neither a place id nor a name in the gazetteer; kept the places the text names")
    });
    (found, warning)
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
