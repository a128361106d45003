//! [`Writer`]: stores batches of analysed posts so that `posts` holds one live row per key and the
//! trend views count every post exactly once under its latest labels.
//!
//! Per attempt the writer (1) reads key, version, sign and content hash of the stored rows of the
//! batch's keys (only the days they were published on), (2) decides per post:
//! new → one +1 row; same content as stored, or older than stored → nothing; newer with other labels →
//! a −1 copy of the stored row plus the new row at the next version, and (3) inserts all rows in one
//! INSERT. A retry repeats all three steps, so an insert that reached ClickHouse before the
//! connection broke is seen as stored and not written twice. Correctness needs one writer per key at
//! a time, which Kafka gives: a key always lands on the same partition, a partition has one consumer.

use crate::error::{Backoff, ClickHouseError, Retry, StoreError};
use crate::ident::Database;
use crate::rows::{EmbeddingRow, PostRow, StoredVersion};
use chrono::Datelike;
use clickhouse::Client;
use schema::AnalyzedPost;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most keys per lookup query. The keys travel as one bound array (`key IN (SELECT arrayJoin(?))`):
/// 18.16 parses one array literal ~4x faster than a tuple of as many literals, and one bind avoids
/// the client's per-`?` scan, so one query per batch is cheaper than many small ones.
const LOOKUP_CHUNK: usize = 50_000;
/// Most key bytes per lookup query: bounds its size whatever the keys' lengths (a key is ≤ ~330 bytes).
const LOOKUP_CHUNK_BYTES: usize = 4 << 20;
/// The lookup's `max_query_size`, bytes: ClickHouse's default (256 KiB) refuses a long key list with
/// a syntax error, which would look permanent and send a healthy batch post by post. Escaping at
/// most doubles a key, plus quotes and commas: 16 MiB covers a full chunk.
const LOOKUP_MAX_QUERY_BYTES: &str = "16777216";

/// How the writer retries and what it refuses.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub backoff: Backoff,
    /// Longest one attempt (lookup + insert) may take before it counts as a transient failure.
    pub attempt_timeout: Duration,
    /// Retries of an error with an unknown ClickHouse code before it is treated as permanent.
    pub unknown_retries: u32,
    /// Posts published before this many days ago are not written: their day's partition may be
    /// dropped already, so the writer could not tell a redelivery from a new post. `None`: no limit.
    pub posts_retention_days: Option<u32>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            backoff: Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(30) },
            attempt_timeout: Duration::from_secs(30),
            unknown_retries: 3,
            posts_retention_days: None,
        }
    }
}

/// A post ClickHouse refused for a reason retrying cannot fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index into the batch given to [`Writer::write`].
    pub index: usize,
    /// Stable short kind for the DLQ (`clickhouse_rejected`, `unrepresentable`).
    pub kind: &'static str,
    /// ClickHouse's message (or ours).
    pub reason: String,
}

/// What happened to a batch. Every post of the batch is in exactly one of the counts or `rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Posts stored for the first time.
    pub inserted: usize,
    /// Posts whose stored labels were replaced by newer ones.
    pub replaced: usize,
    /// Redeliveries (same content stored already, or a later copy in the same batch).
    pub duplicates: usize,
    /// Analyses older than the stored one.
    pub stale: usize,
    /// Published before the posts retention horizon; not stored.
    pub expired: usize,
    /// Refused permanently: the caller sends these to the DLQ.
    pub rejected: Vec<Rejected>,
    /// Rows written to `posts` (new rows plus cancelling rows).
    pub rows_written: usize,
    /// The batch was refused as a whole and then written post by post.
    pub post_by_post: bool,
}

/// ClickHouse reachability for /healthz: when the current run of failures started. Writes report
/// every attempt; while no write is in flight, [`Writer::probe`] keeps it current (an idle writer
/// would otherwise never notice ClickHouse going away).
#[derive(Debug, Default)]
pub struct Health {
    /// Unix milliseconds of the first failure since the last success; 0 while healthy.
    failing_since_ms: AtomicI64,
    /// Writes in flight: a probe then stays out, so a `SELECT 1` that works cannot mask inserts
    /// that keep failing.
    writing: AtomicUsize,
}

impl Health {
    fn ok(&self) {
        self.failing_since_ms.store(0, Ordering::Relaxed);
    }

    fn failed(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        let _ = self.failing_since_ms.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// How long ClickHouse has been failing, if it is.
    pub fn failing_for(&self) -> Option<Duration> {
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        (since != 0)
            .then(|| Duration::from_millis(u64::try_from(chrono::Utc::now().timestamp_millis() - since).unwrap_or(0)))
    }

    /// False once ClickHouse has been failing longer than `limit`.
    pub fn healthy(&self, limit: Duration) -> bool {
        self.failing_for().is_none_or(|d| d <= limit)
    }
}

/// Counts a write as in flight for as long as it lives.
struct Writing<'a>(&'a Health);

impl<'a> Writing<'a> {
    fn start(health: &'a Health) -> Self {
        health.writing.fetch_add(1, Ordering::Relaxed);
        Writing(health)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One post of a batch that survived conversion and in-batch de-duplication.
struct Candidate {
    index: usize,
    row: PostRow,
    /// For a post no topic claimed: its `post_embeddings` row.
    embedding: Option<EmbeddingRow>,
}

#[derive(Debug, Default)]
struct Counts {
    inserted: usize,
    replaced: usize,
    duplicates: usize,
    stale: usize,
    rows: usize,
}

/// Writes batches of [`AnalyzedPost`] to `posts`.
///
/// On a cluster it inserts into `posts_local` of the one server its client talks to, and reads the
/// stored versions back from that same table: replication between servers is asynchronous, so a
/// lookup through `posts` (Distributed, any replica) could miss this writer's last insert and count
/// a redelivered post twice. Should that server go down the writer waits for it, as for a lone
/// server; it does not fail over to a replica that may not hold its last writes yet.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    db: Database,
    cfg: WriterConfig,
    health: Arc<Health>,
}

impl Writer {
    pub fn new(client: Client, db: Database, cfg: WriterConfig) -> Self {
        Writer { client, db, cfg, health: Arc::default() }
    }

    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// The client and database it writes to (migrations and retention use the same).
    pub fn target(&self) -> (&Client, &Database) {
        (&self.client, &self.db)
    }

    /// Asks ClickHouse `SELECT 1` unless a write is in flight (its attempts are the better signal),
    /// and records the answer in [`Health`]. The `citypulse store` service calls it periodically.
    pub async fn probe(&self) {
        if self.health.writing.load(Ordering::Relaxed) > 0 {
            return;
        }
        let limit = self.cfg.attempt_timeout.min(Duration::from_secs(10));
        let answer = match tokio::time::timeout(limit, self.client.query("SELECT 1").fetch_one::<u8>()).await {
            Ok(r) => r.map(drop).map_err(|e| ClickHouseError::new("health probe", e)),
            Err(_) => Err(ClickHouseError::new("health probe", clickhouse::error::Error::TimedOut)),
        };
        match answer {
            // Any answer from the server, even an error, means it is reachable.
            Err(e) if e.retry() != Retry::Permanent => {
                tracing::debug!(error = %e, "ClickHouse probe failed");
                self.health.failed();
            }
            _ if self.health.writing.load(Ordering::Relaxed) == 0 => self.health.ok(),
            _ => {}
        }
    }

    /// Stores `posts`. Transient failures are retried with backoff until they succeed or `shutdown`
    /// fires ([`StoreError::Cancelled`]: nothing is acknowledged, Kafka redelivers). A batch refused
    /// permanently is retried post by post so that only the poisoned posts end up in `rejected`.
    /// Takes the posts by value: their strings move into the rows instead of being copied.
    pub async fn write(
        &self,
        posts: Vec<AnalyzedPost>,
        shutdown: &CancellationToken,
    ) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        let mut candidates = self.candidates(posts, &mut report);
        match self.write_retrying(&mut candidates, shutdown).await? {
            Ok(counts) => add(&mut report, counts),
            Err(e) if candidates.len() > 1 => {
                tracing::warn!(error = %e, posts = candidates.len(), "batch refused; retrying post by post");
                metrics::counter!("citypulse_store_batch_fallbacks_total").increment(1);
                report.post_by_post = true;
                for c in &mut candidates {
                    let index = c.index;
                    match self.write_retrying(std::slice::from_mut(c), shutdown).await? {
                        Ok(counts) => add(&mut report, counts),
                        Err(e) => report.rejected.push(rejected(index, &e)),
                    }
                }
            }
            Err(e) => report.rejected.extend(candidates.iter().map(|c| rejected(c.index, &e))),
        }
        report.rejected.sort_by_key(|r| r.index);
        metrics::counter!("citypulse_store_posts_total", "outcome" => "inserted").increment(report.inserted as u64);
        metrics::counter!("citypulse_store_posts_total", "outcome" => "replaced").increment(report.replaced as u64);
        metrics::counter!("citypulse_store_posts_total", "outcome" => "duplicate").increment(report.duplicates as u64);
        metrics::counter!("citypulse_store_posts_total", "outcome" => "stale").increment(report.stale as u64);
        metrics::counter!("citypulse_store_posts_total", "outcome" => "expired").increment(report.expired as u64);
        metrics::counter!("citypulse_store_posts_total", "outcome" => "rejected")
            .increment(report.rejected.len() as u64);
        Ok(report)
    }

    /// Converts posts to rows and keeps, per key, only the newest analysis in the batch (at the
    /// position of the key's first delivery; order does not matter to the write).
    fn candidates(&self, posts: Vec<AnalyzedPost>, report: &mut WriteReport) -> Vec<Candidate> {
        let horizon = self.cfg.posts_retention_days.map(|days| {
            let today = chrono::Utc::now().date_naive();
            let first_kept = today - chrono::Duration::days(i64::from(days));
            first_kept.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or(0)
        });
        let mut out: Vec<Candidate> = Vec::with_capacity(posts.len());
        let mut position: HashMap<String, usize> = HashMap::with_capacity(posts.len());
        for (index, mut post) in posts.into_iter().enumerate() {
            if horizon.is_some_and(|h| post.created_at.timestamp() < h) {
                report.expired += 1;
                continue;
            }
            let embedding = post.embedding.take();
            let row = match PostRow::from_post(post, 0) {
                Ok(row) => row,
                Err(e) => {
                    report.rejected.push(Rejected { index, kind: "unrepresentable", reason: e.to_string() });
                    continue;
                }
            };
            match position.get(&row.key).map(|&at| &mut out[at]) {
                // Later offsets win ties: within a partition they are the later analysis.
                Some(kept) if row.analyzed_ms_total() >= kept.row.analyzed_ms_total() => {
                    let embedding = embedding.map(|e| EmbeddingRow::of(&row, e));
                    *kept = Candidate { index, row, embedding };
                    report.duplicates += 1;
                }
                Some(_) => report.duplicates += 1,
                None => {
                    position.insert(row.key.clone(), out.len());
                    let embedding = embedding.map(|e| EmbeddingRow::of(&row, e));
                    out.push(Candidate { index, row, embedding });
                }
            }
        }
        out
    }

    /// Ok(Ok) stored; Ok(Err) refused permanently; Err(Cancelled) shutdown during a retry pause.
    async fn write_retrying(
        &self,
        candidates: &mut [Candidate],
        shutdown: &CancellationToken,
    ) -> Result<Result<Counts, ClickHouseError>, StoreError> {
        if candidates.is_empty() {
            return Ok(Ok(Counts::default()));
        }
        let _writing = Writing::start(&self.health);
        let mut attempt = 0u32;
        let mut unknown = 0u32;
        loop {
            let result = match tokio::time::timeout(self.cfg.attempt_timeout, self.attempt(&mut *candidates)).await {
                Ok(r) => r,
                Err(_) => Err(ClickHouseError::new("insert attempt", clickhouse::error::Error::TimedOut)),
            };
            let e = match result {
                Ok(counts) => {
                    self.health.ok();
                    metrics::counter!("citypulse_store_rows_inserted_total").increment(counts.rows as u64);
                    metrics::gauge!("citypulse_store_last_insert_timestamp_seconds")
                        .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
                    return Ok(Ok(counts));
                }
                Err(e) => e,
            };
            metrics::counter!("citypulse_store_insert_errors_total", "kind" => e.kind()).increment(1);
            let retry = match e.retry() {
                Retry::Unknown if unknown < self.cfg.unknown_retries => {
                    unknown += 1;
                    Retry::Transient
                }
                Retry::Unknown => Retry::Permanent,
                r => r,
            };
            if retry == Retry::Permanent {
                // The server answered: it is reachable.
                self.health.ok();
                return Ok(Err(e));
            }
            self.health.failed();
            let pause = self.cfg.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            let pause_ms = pause.as_millis() as u64;
            if retry == Retry::Blocked {
                tracing::warn!(
                    error = %e,
                    attempt,
                    pause_ms,
                    posts = candidates.len(),
                    "ClickHouse cannot take posts until its table, database or access is back; waiting, nothing is dropped"
                );
            } else {
                tracing::warn!(error = %e, attempt, pause_ms, "insert failed; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(StoreError::Cancelled),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One try: lookup, plan, insert. Sets the version of each candidate it writes in place (a
    /// retry plans again from what is stored then), so no row is copied on the way to the insert.
    async fn attempt(&self, candidates: &mut [Candidate]) -> Result<Counts, ClickHouseError> {
        // Embeddings first: writing one twice is harmless (ReplacingMergeTree on key), and a retry
        // whose posts all turn out stored already still writes them.
        self.insert_embeddings(candidates).await?;
        let stored = self.stored_versions(candidates).await?;
        let mut counts = Counts::default();
        let mut versions: Vec<Option<u64>> = Vec::with_capacity(candidates.len());
        let mut cancels: Vec<(&Candidate, Vec<u64>)> = Vec::new();
        for c in candidates.iter() {
            let plan = plan(&c.row, stored.get(&c.row.key).map(Vec::as_slice).unwrap_or_default());
            match plan.outcome {
                Outcome::Inserted => counts.inserted += 1,
                Outcome::Replaced => counts.replaced += 1,
                Outcome::Duplicate => counts.duplicates += 1,
                Outcome::Stale => counts.stale += 1,
            }
            versions.push(plan.insert_version);
            if !plan.cancel.is_empty() {
                cancels.push((c, plan.cancel));
            }
        }
        let cancelling = self.cancelling_rows(&cancels).await?;
        drop(cancels);
        counts.rows = cancelling.len() + versions.iter().flatten().count();
        if counts.rows == 0 {
            return Ok(counts);
        }
        let timeout = Some(self.cfg.attempt_timeout);
        let client = self.client.clone().with_database(self.db.as_str());
        let mut insert = client
            .insert::<PostRow>(&self.db.stored("posts"))
            .await
            .map_err(|e| ClickHouseError::new("starting insert", e))?
            .with_timeouts(timeout, timeout);
        for (c, version) in candidates.iter_mut().zip(versions) {
            let Some(version) = version else { continue };
            c.row.version = version;
            // Only rows that are written get their search index (a retry keeps the one made).
            if c.row.search_index == 0 {
                c.row.index_for_search();
            }
            insert.write(&c.row).await.map_err(|e| ClickHouseError::new("writing rows", e))?;
        }
        for row in &cancelling {
            insert.write(row).await.map_err(|e| ClickHouseError::new("writing rows", e))?;
        }
        insert.end().await.map_err(|e| ClickHouseError::new("inserting into posts", e))?;
        Ok(counts)
    }

    /// The candidates' `post_embeddings` rows, in one INSERT (none: no request).
    async fn insert_embeddings(&self, candidates: &[Candidate]) -> Result<(), ClickHouseError> {
        // Collected first: an iterator of closures held across the awaits makes the future not Send.
        let rows: Vec<&EmbeddingRow> = candidates.iter().filter_map(|c| c.embedding.as_ref()).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let timeout = Some(self.cfg.attempt_timeout);
        let client = self.client.clone().with_database(self.db.as_str());
        let mut insert = client
            .insert::<EmbeddingRow>(&self.db.stored("post_embeddings"))
            .await
            .map_err(|e| ClickHouseError::new("starting insert", e))?
            .with_timeouts(timeout, timeout);
        for row in rows {
            insert.write(row).await.map_err(|e| ClickHouseError::new("writing embeddings", e))?;
        }
        insert.end().await.map_err(|e| ClickHouseError::new("inserting into post_embeddings", e))
    }

    /// Key, version, sign and content hash of every stored row of the candidates' keys. Reads only
    /// the UTC-day partitions the candidates were published on: a post's `created_at` (its source's
    /// publication time) is the same in every analysis of it, so its rows all live in that day.
    async fn stored_versions(
        &self,
        candidates: &[Candidate],
    ) -> Result<HashMap<String, Vec<StoredVersion>>, ClickHouseError> {
        let mut out: HashMap<String, Vec<StoredVersion>> = HashMap::new();
        for chunk in lookup_chunks(candidates.iter()) {
            let rows: Vec<StoredVersion> = self
                .lookup_query(&chunk, "")
                .fetch_all()
                .await
                .map_err(|e| ClickHouseError::new("reading stored posts", e))?;
            for r in rows {
                out.entry(r.key.clone()).or_default().push(r);
            }
        }
        Ok(out)
    }

    /// `SELECT ?fields ... PREWHERE key IN (keys) WHERE day partition IN (days)`, keys bound as one
    /// array; the days are numbers we computed.
    fn lookup_query(&self, chunk: &Chunk<'_>, extra: &str) -> clickhouse::query::Query {
        let days: Vec<String> = chunk.days.iter().map(u32::to_string).collect();
        let sql = format!(
            "SELECT ?fields FROM {}.{} PREWHERE key IN (SELECT arrayJoin(?)) \
             WHERE toYYYYMMDD(created_at) IN ({}){extra}",
            self.db,
            self.db.stored("posts"),
            days.join(",")
        );
        self.client.query(&sql).with_setting("max_query_size", LOOKUP_MAX_QUERY_BYTES).bind(&chunk.keys)
    }

    /// The −1 rows for the given (candidate, versions to cancel): exact copies of the stored +1 rows.
    async fn cancelling_rows(&self, cancels: &[(&Candidate, Vec<u64>)]) -> Result<Vec<PostRow>, ClickHouseError> {
        if cancels.is_empty() {
            return Ok(Vec::new());
        }
        let mut full: HashMap<(String, u64), PostRow> = HashMap::new();
        for chunk in lookup_chunks(cancels.iter().map(|(c, _)| *c)) {
            let rows: Vec<PostRow> = self
                .lookup_query(&chunk, " AND sign = 1")
                .fetch_all()
                .await
                .map_err(|e| ClickHouseError::new("reading rows to cancel", e))?;
            full.extend(rows.into_iter().map(|r| ((r.key.clone(), r.version), r)));
        }
        let mut out = Vec::new();
        for (c, versions) in cancels {
            for v in versions {
                let row = full.get(&(c.row.key.clone(), *v)).ok_or_else(|| {
                    let msg = format!("stored row {} version {v} vanished between two reads", c.row.key);
                    ClickHouseError::new("reading rows to cancel", clickhouse::error::Error::Custom(msg))
                })?;
                out.push(row.cancelling());
            }
        }
        Ok(out)
    }
}

/// One lookup query's worth of keys and the day partitions (`YYYYMMDD`, UTC) they were published on.
struct Chunk<'a> {
    keys: Vec<&'a str>,
    days: Vec<u32>,
}

/// Splits candidates into lookup chunks (at most [`LOOKUP_CHUNK`] keys and [`LOOKUP_CHUNK_BYTES`]
/// key bytes each), sorted by day so a chunk touches few partitions.
fn lookup_chunks<'a>(candidates: impl Iterator<Item = &'a Candidate>) -> Vec<Chunk<'a>> {
    let mut keyed: Vec<(u32, &str)> = candidates.map(|c| (utc_day(c.row.created_at), c.row.key.as_str())).collect();
    keyed.sort_unstable();
    let mut chunks: Vec<Chunk<'a>> = Vec::new();
    let mut bytes = 0;
    for (day, key) in keyed {
        let full = chunks.last().is_none_or(|c| c.keys.len() >= LOOKUP_CHUNK || bytes + key.len() > LOOKUP_CHUNK_BYTES);
        if full {
            chunks.push(Chunk { keys: Vec::new(), days: Vec::new() });
            bytes = 0;
        }
        let Some(chunk) = chunks.last_mut() else { continue };
        if chunk.days.last() != Some(&day) {
            chunk.days.push(day);
        }
        chunk.keys.push(key);
        bytes += key.len();
    }
    chunks
}

/// `YYYYMMDD` of a Unix time in UTC: the `posts` partition id.
fn utc_day(secs: u32) -> u32 {
    chrono::DateTime::from_timestamp(i64::from(secs), 0)
        .map(|t| {
            let d = t.date_naive();
            d.year() as u32 * 10_000 + d.month() * 100 + d.day()
        })
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Inserted,
    Replaced,
    Duplicate,
    Stale,
}

#[derive(Debug, PartialEq, Eq)]
struct Plan {
    outcome: Outcome,
    /// Live versions to take back with a −1 copy.
    cancel: Vec<u64>,
    /// Version of the new +1 row, if one is written.
    insert_version: Option<u64>,
}

/// Decides what to write for `incoming` given every stored row of its key. Pure: the heart of
/// exactness, tested below without a server.
fn plan(incoming: &PostRow, stored: &[StoredVersion]) -> Plan {
    // Net sign per version: a version is live while its +1 row is not cancelled.
    let mut net: HashMap<u64, i64> = HashMap::new();
    for r in stored {
        *net.entry(r.version).or_default() += i64::from(r.sign);
    }
    let mut live: Vec<&StoredVersion> =
        stored.iter().filter(|r| r.sign == 1 && net.get(&r.version) > Some(&0)).collect();
    live.sort_by_key(|r| r.version);
    live.dedup_by_key(|r| r.version);
    let next_version = stored.iter().map(|r| r.version).max().unwrap_or(0) + 1;
    let Some(newest) = live.last().copied() else {
        return Plan { outcome: Outcome::Inserted, cancel: vec![], insert_version: Some(next_version) };
    };
    // Normally at most one version is live; more can only come from two writers racing on a key.
    // Cancelling the extra ones heals the counts.
    let older_live: Vec<u64> = live[..live.len() - 1].iter().map(|r| r.version).collect();
    if incoming.analyzed_ms_total() < newest.analyzed_ms_total() {
        return Plan { outcome: Outcome::Stale, cancel: older_live, insert_version: None };
    }
    // Rows stored before the content hash changed carry the legacy one; computed only on a miss.
    if incoming.content_hash == newest.content_hash || incoming.legacy_content_hash() == newest.content_hash {
        return Plan { outcome: Outcome::Duplicate, cancel: older_live, insert_version: None };
    }
    Plan {
        outcome: Outcome::Replaced,
        cancel: live.iter().map(|r| r.version).collect(),
        insert_version: Some(next_version),
    }
}

fn add(report: &mut WriteReport, c: Counts) {
    report.inserted += c.inserted;
    report.replaced += c.replaced;
    report.duplicates += c.duplicates;
    report.stale += c.stale;
    report.rows_written += c.rows;
}

fn rejected(index: usize, e: &ClickHouseError) -> Rejected {
    Rejected { index, kind: "clickhouse_rejected", reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(sentiment: &str, analyzed_at: u32) -> PostRow {
        let mut r = PostRow {
            key: "m:1".into(),
            source: "m".into(),
            id: "1".into(),
            url: String::new(),
            author: "a".into(),
            lang: "vi".into(),
            lang_declared: String::new(),
            text_redacted: "t".into(),
            sentiment: sentiment.into(),
            score: 0.5,
            p_negative: 0.1,
            p_neutral: 0.3,
            p_positive: 0.6,
            topics: vec!["flooding".into()],
            topic_scores: vec![0.9],
            primary_topic: "flooding".into(),
            places: vec![],
            likes: None,
            shares: None,
            replies: None,
            created_at: 1_764_000_000,
            created_ms: 0,
            fetched_at: 1_764_000_001,
            analyzed_at,
            analyzed_ms: 0,
            model_id: "e5".into(),
            model_version: "v1".into(),
            content_hash: 0,
            sign: 1,
            version: 0,
            created_at_estimated: 0,
            search_words: String::new(),
            search_folded: String::new(),
            search_accented: 0,
            search_index: 0,
        };
        r.content_hash = r.content_hash();
        r
    }

    fn stored(r: &PostRow, version: u64, sign: i8) -> StoredVersion {
        StoredVersion {
            key: r.key.clone(),
            version,
            sign,
            content_hash: r.content_hash,
            analyzed_at: r.analyzed_at,
            analyzed_ms: r.analyzed_ms,
        }
    }

    #[test]
    fn the_content_hash_ignores_times_and_bookkeeping_only() {
        let a = incoming("positive", 10);
        let later = PostRow { fetched_at: 5, version: 9, sign: -1, ..incoming("positive", 99) };
        assert_eq!(later.content_hash(), a.content_hash);
        assert_ne!(incoming("negative", 10).content_hash, a.content_hash);
        let moved = PostRow { places: vec!["q1".into()], ..a.clone() };
        assert_ne!(moved.content_hash(), a.content_hash);
    }

    #[test]
    fn lookup_chunks_group_days_and_name_partitions() {
        assert_eq!(utc_day(1_764_000_000), 20251124);
        assert_eq!(utc_day(1_764_028_799), 20251124);
        assert_eq!(utc_day(1_764_028_800), 20251125);
        let cands: Vec<Candidate> = (0..(LOOKUP_CHUNK as u32 + 10))
            .map(|i| Candidate {
                index: i as usize,
                row: PostRow {
                    key: format!("m:{i}"),
                    created_at: 1_764_000_000 + (i % 2) * 86_400,
                    ..incoming("positive", 1)
                },
                embedding: None,
            })
            .collect();
        let chunks = lookup_chunks(cands.iter());
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].keys.len(), LOOKUP_CHUNK);
        assert_eq!(chunks[1].days, vec![20251125], "sorted by day: the tail is all the second day");
        assert_eq!(chunks[0].days, vec![20251124, 20251125]);
        // Long keys close a chunk on bytes first.
        let long: Vec<Candidate> = (0..100u32)
            .map(|i| Candidate {
                index: i as usize,
                row: PostRow {
                    key: format!("{i:03}{}", "k".repeat(LOOKUP_CHUNK_BYTES / 40 - 3)),
                    ..incoming("positive", 1)
                },
                embedding: None,
            })
            .collect();
        let chunks = lookup_chunks(long.iter());
        assert_eq!(chunks.iter().map(|c| c.keys.len()).collect::<Vec<_>>(), vec![40, 40, 20]);
    }

    #[test]
    fn new_key_gets_version_one() {
        let p = plan(&incoming("positive", 10), &[]);
        assert_eq!(p, Plan { outcome: Outcome::Inserted, cancel: vec![], insert_version: Some(1) });
    }

    #[test]
    fn redelivery_writes_nothing_even_with_a_later_analyzed_at() {
        let s = [stored(&incoming("positive", 10), 1, 1)];
        let p = plan(&incoming("positive", 20), &s);
        assert_eq!(p, Plan { outcome: Outcome::Duplicate, cancel: vec![], insert_version: None });
    }

    #[test]
    fn a_row_stored_with_the_legacy_hash_is_still_a_duplicate_but_a_change_is_not() {
        let old = incoming("positive", 10);
        let s = [StoredVersion { content_hash: old.legacy_content_hash(), ..stored(&old, 1, 1) }];
        let p = plan(&incoming("positive", 20), &s);
        assert_eq!(p, Plan { outcome: Outcome::Duplicate, cancel: vec![], insert_version: None });
        let p = plan(&incoming("negative", 20), &s);
        assert_eq!(p, Plan { outcome: Outcome::Replaced, cancel: vec![1], insert_version: Some(2) });
    }

    #[test]
    fn reanalysis_cancels_the_stored_row_and_adds_the_next_version() {
        let s = [stored(&incoming("positive", 10), 1, 1)];
        let p = plan(&incoming("negative", 20), &s);
        assert_eq!(p, Plan { outcome: Outcome::Replaced, cancel: vec![1], insert_version: Some(2) });
    }

    #[test]
    fn an_older_analysis_after_a_newer_one_is_stale() {
        let (pos, neg) = (incoming("positive", 10), incoming("negative", 20));
        let s = [stored(&pos, 1, 1), stored(&pos, 1, -1), stored(&neg, 2, 1)];
        assert_eq!(plan(&pos, &s), Plan { outcome: Outcome::Stale, cancel: vec![], insert_version: None });
        // Back to the first labels with a newer analysis: cancels version 2, writes version 3.
        let p = plan(&incoming("positive", 30), &s);
        assert_eq!(p, Plan { outcome: Outcome::Replaced, cancel: vec![2], insert_version: Some(3) });
    }

    #[test]
    fn two_live_versions_from_a_race_are_healed() {
        let s = [stored(&incoming("positive", 10), 1, 1), stored(&incoming("negative", 20), 2, 1)];
        let p = plan(&incoming("negative", 20), &s);
        assert_eq!(p, Plan { outcome: Outcome::Duplicate, cancel: vec![1], insert_version: None });
    }
}
