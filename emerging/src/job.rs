//! [`Job`]: one day's emerging-issues report, from ClickHouse and back into it. Reads the day's
//! unclaimed posts (`post_embeddings` joined with the live rows of `posts` of the same analysis)
//! and the baseline days' embeddings, runs [`crate::find::find`] on a blocking thread, and keeps
//! each run in `emerging_reports` (migration 007); readers take a day's latest run.

use crate::find::{self, Baseline, DayPost};
use crate::report::Report;
use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::{Client, Row};
use schema::config::emerging::EmergingConfig;
use schema::Int8Embedding;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;
use store::{ClickHouseError, Database};

#[derive(Debug, thiserror::Error)]
pub enum EmergingError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("the stored report of {date} cannot be read: {source}")]
    Corrupt { date: NaiveDate, source: serde_json::Error },
    #[error("the grouping task stopped: {0}")]
    Task(String),
}

/// The encoder's embedding width (multilingual-e5-small); other lengths are left out.
const EMBEDDING_DIMS: usize = 384;
/// Most baseline posts read in all (an even sample beyond it; counts are scaled back).
const BASELINE_MAX_POSTS: u64 = 100_000;
/// How long after a day's end posts of that day still arrive (pipeline lag, redelivery, late
/// crawls): a run that starts later than this is final, and the stage stops recomputing the day.
const FINAL_AFTER: chrono::Duration = chrono::Duration::hours(2);

/// The job for one database and city.
#[derive(Clone)]
pub struct Job {
    client: Client,
    db: Database,
    tz: chrono_tz::Tz,
    cfg: EmergingConfig,
}

/// A `post_embeddings` row as read (a post can have several until merges: the latest wins).
#[derive(Debug, Row, Deserialize)]
struct EmbeddingRead {
    key: String,
    created_at: u32,
    analyzed_at: u32,
    embedding: Vec<i8>,
}

/// The live row of a baseline post: which analysis is current.
#[derive(Debug, Row, Deserialize)]
struct LiveKey {
    key: String,
    analyzed_at: u32,
}

/// The live row of a post, what the report shows of it.
#[derive(Debug, Row, Deserialize)]
struct PostRead {
    key: String,
    text_redacted: String,
    sentiment: String,
    places: Vec<String>,
    source: String,
    analyzed_at: u32,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct ReportRow {
    day: u16,
    computed_at: u32,
    #[serde(rename = "final")]
    is_final: u8,
    posts: u32,
    groups: u16,
    reported: u16,
    duration_ms: u32,
    body: String,
}

impl Job {
    pub fn new(client: Client, db: Database, tz: chrono_tz::Tz, cfg: EmergingConfig) -> Self {
        Job { client, db, tz, cfg }
    }

    /// The city day `date` as a UTC range [start, end) (a day starting in a DST gap starts at its
    /// first valid instant).
    pub fn day_bounds(&self, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = |d: NaiveDate| store::query::local_midnight(self.tz, d).with_timezone(&Utc);
        (start(date), start(date.succ_opt().unwrap_or(date)))
    }

    /// The city's date now.
    pub fn today(&self) -> NaiveDate {
        Utc::now().with_timezone(&self.tz).date_naive()
    }

    /// Computes the report of `date` (not saved).
    pub async fn compute(&self, date: NaiveDate) -> Result<Report, EmergingError> {
        let started = Instant::now();
        let (start, end) = self.day_bounds(date);
        // Decided before reading: a post stored while the reads run may not be in this run.
        let is_final = Utc::now() >= end + FINAL_AFTER;
        let unclaimed = self.count(start, end).await?;
        let permille = permille(unclaimed, self.cfg.max_posts_per_day as u64);
        let day = self.unclaimed_posts(start, end, permille).await?;
        let first_baseline_day = date - chrono::Duration::days(i64::from(self.cfg.baseline_days));
        let baseline = self.baseline(self.day_bounds(first_baseline_day).0, start).await?;
        tracing::info!(
            %date,
            unclaimed,
            read = day.len(),
            baseline = baseline.embeddings.len(),
            read_seconds = started.elapsed().as_secs_f64(),
            "grouping the day's unclaimed posts"
        );
        let posts_grouped = day.len() as u32;
        let cfg = self.cfg.clone();
        let days_with_posts = baseline.days_with_posts;
        let day_rate = permille as f32 / 1000.0;
        let found = tokio::task::spawn_blocking(move || {
            // Its own threads, not rayon's global pool, which candle's encoder uses in a process
            // that runs the analyze stage too.
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("citypulse-emerging-{i}"))
                .build()
                .map(|pool| pool.install(|| find::find(&day, day_rate, &baseline, &cfg)))
                .map_err(|e| EmergingError::Task(e.to_string()))
        })
        .await
        .map_err(|e| EmergingError::Task(e.to_string()))??;
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("citypulse_emerging_job_seconds").record(seconds);
        Ok(Report {
            date: date.to_string(),
            computed_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            is_final,
            unclaimed_posts: unclaimed as u32,
            posts_grouped,
            baseline_days_with_posts: days_with_posts,
            groups_found: found.groups_found as u32,
            groups: found.groups,
            seconds,
        })
    }

    /// Unclaimed posts with an embedding published in [start, end).
    async fn count(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<u64, EmergingError> {
        let sql = format!(
            "SELECT toUInt64(uniqExact(key)) FROM {}.post_embeddings \
             WHERE created_at >= toDateTime(?) AND created_at < toDateTime(?)",
            self.db
        );
        Ok(self
            .client
            .query(&sql)
            .bind(secs(start))
            .bind(secs(end))
            .fetch_one::<u64>()
            .await
            .map_err(|e| ClickHouseError::new("counting unclaimed posts", e))?)
    }

    /// The latest embedding of each post published in [start, end); an even sample by key hash
    /// when `permille` < 1000. Deduplicated here: ClickHouse's `argMax` over arrays took 6 s for
    /// 100,000 posts where reading every row and keeping the latest took 0.5 s. An embedding of
    /// another length than the encoder's is left out (counted in the log).
    async fn embeddings(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        permille: u64,
    ) -> Result<HashMap<String, EmbeddingRead>, EmergingError> {
        let sql = format!(
            "SELECT ?fields FROM {}.post_embeddings WHERE created_at >= toDateTime(?) AND created_at < toDateTime(?) \
             AND cityHash64(key) % 1000 < ?",
            self.db
        );
        let mut cursor = self
            .client
            .query(&sql)
            .bind(secs(start))
            .bind(secs(end))
            .bind(permille)
            .fetch::<EmbeddingRead>()
            .map_err(|e| ClickHouseError::new("reading post_embeddings", e))?;
        let mut latest: HashMap<String, EmbeddingRead> = HashMap::new();
        let mut wrong_length = 0u64;
        while let Some(row) = cursor.next().await.map_err(|e| ClickHouseError::new("reading post_embeddings", e))? {
            if row.embedding.len() != EMBEDDING_DIMS {
                wrong_length += 1;
                continue;
            }
            match latest.get(&row.key) {
                Some(kept) if kept.analyzed_at >= row.analyzed_at => {}
                _ => {
                    latest.insert(row.key.clone(), row);
                }
            }
        }
        if wrong_length > 0 {
            tracing::warn!(wrong_length, "embeddings of another length than {EMBEDDING_DIMS} left out");
        }
        Ok(latest)
    }

    /// The live rows of `posts` published in [start, end) that have an embedding (same sample), as
    /// much of them as `T` names: the day's posts with their text, the baseline's keys only.
    async fn live_posts<T: clickhouse::RowOwned + clickhouse::RowRead>(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        permille: u64,
    ) -> Result<Vec<T>, EmergingError> {
        let sql = format!(
            "SELECT ?fields FROM {db}.posts FINAL WHERE sign = 1 AND created_at >= toDateTime(?) \
             AND created_at < toDateTime(?) AND cityHash64(key) % 1000 < ? AND key IN \
             (SELECT key FROM {db}.post_embeddings WHERE created_at >= toDateTime(?) AND created_at < toDateTime(?))",
            db = self.db
        );
        Ok(self
            .client
            .query(&sql)
            .bind(secs(start))
            .bind(secs(end))
            .bind(permille)
            .bind(secs(start))
            .bind(secs(end))
            .fetch_all::<T>()
            .await
            .map_err(|e| ClickHouseError::new("reading the posts behind the embeddings", e))?)
    }

    /// The posts of [start, end) whose current analysis left them unclaimed: the embedding's
    /// `analyzed_at` is the live row's (a post re-analysed since, and claimed now, has a newer
    /// live row and no newer embedding), with that analysis' redacted text, sentiment, places and
    /// source, in key order.
    async fn unclaimed_posts(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        permille: u64,
    ) -> Result<Vec<DayPost>, EmergingError> {
        let mut embeddings = self.embeddings(start, end, permille).await?;
        let mut posts: Vec<DayPost> = self
            .live_posts::<PostRead>(start, end, permille)
            .await?
            .into_iter()
            .filter_map(|p| {
                let e = embeddings.remove(&p.key).filter(|e| e.analyzed_at == p.analyzed_at)?;
                Some(DayPost {
                    key: p.key,
                    embedding: Int8Embedding(e.embedding),
                    text_redacted: p.text_redacted,
                    negative: p.sentiment == "negative",
                    places: p.places,
                    source: p.source,
                })
            })
            .collect();
        posts.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(posts)
    }

    /// The baseline days' unclaimed posts, chosen as the day's are (the embedding of the live
    /// analysis) but without their text, a sample beyond [`BASELINE_MAX_POSTS`].
    async fn baseline(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Baseline, EmergingError> {
        let total = self.count(start, end).await?;
        let permille = permille(total, BASELINE_MAX_POSTS);
        let mut embeddings = self.embeddings(start, end, permille).await?;
        let live: Vec<LiveKey> = self.live_posts(start, end, permille).await?;
        let rows: Vec<EmbeddingRead> = live
            .into_iter()
            .filter_map(|p| embeddings.remove(&p.key).filter(|e| e.analyzed_at == p.analyzed_at))
            .collect();
        let days: std::collections::BTreeSet<NaiveDate> = rows
            .iter()
            .filter_map(|r| DateTime::from_timestamp(i64::from(r.created_at), 0))
            .map(|t| t.with_timezone(&self.tz).date_naive())
            .collect();
        Ok(Baseline {
            sample_rate: permille as f32 / 1000.0,
            days_with_posts: days.len() as u32,
            embeddings: rows.into_iter().map(|r| Int8Embedding(r.embedding)).collect(),
        })
    }

    /// Keeps `report` as its day's latest run.
    pub async fn save(&self, report: &Report) -> Result<(), EmergingError> {
        let date: NaiveDate =
            report.date.parse().map_err(|_| EmergingError::Task(format!("report date {:?}", report.date)))?;
        let row = ReportRow {
            day: (date - NaiveDate::default()).num_days().clamp(0, i64::from(u16::MAX)) as u16,
            computed_at: secs(Utc::now()),
            is_final: u8::from(report.is_final),
            posts: report.posts_grouped,
            groups: report.groups_found.min(u32::from(u16::MAX)) as u16,
            reported: report.groups.len() as u16,
            duration_ms: (report.seconds * 1000.0) as u32,
            body: serde_json::to_string(report).map_err(|source| EmergingError::Corrupt { date, source })?,
        };
        let client = self.client.clone().with_database(self.db.as_str());
        let mut insert = client
            .insert::<ReportRow>(&self.db.stored("emerging_reports"))
            .await
            .map_err(|e| ClickHouseError::new("starting insert", e))?;
        insert.write(&row).await.map_err(|e| ClickHouseError::new("writing the report", e))?;
        insert.end().await.map_err(|e| ClickHouseError::new("inserting into emerging_reports", e))?;
        Ok(())
    }

    /// The latest saved report of `date`, if any.
    pub async fn latest(&self, date: NaiveDate) -> Result<Option<Report>, EmergingError> {
        let sql = format!(
            "SELECT ?fields FROM {}.emerging_reports WHERE day = toDate(?) ORDER BY computed_at DESC LIMIT 1",
            self.db
        );
        let row = self
            .client
            .query(&sql)
            .bind(date.to_string())
            .fetch_optional::<ReportRow>()
            .await
            .map_err(|e| ClickHouseError::new("reading emerging_reports", e))?;
        row.map(|r| serde_json::from_str(&r.body).map_err(|source| EmergingError::Corrupt { date, source })).transpose()
    }
}

fn secs(t: DateTime<Utc>) -> u32 {
    t.timestamp().clamp(0, i64::from(u32::MAX)) as u32
}

/// Thousandths of `count` to read so that about `max` are read (1000 = all).
fn permille(count: u64, max: u64) -> u64 {
    if count <= max {
        1000
    } else {
        (max * 1000 / count.max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_reads_all_up_to_the_cap_and_a_share_beyond() {
        assert_eq!(permille(10, 100), 1000);
        assert_eq!(permille(400, 100), 250);
        assert_eq!(permille(10_000_000, 100), 1, "never nothing");
    }

    #[test]
    fn a_city_day_is_its_local_midnights() {
        let job =
            Job::new(Client::default(), Database::new("x").unwrap(), chrono_tz::Asia::Ho_Chi_Minh, Default::default());
        let (s, e) = job.day_bounds(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap());
        assert_eq!(s.to_rfc3339(), "2026-12-02T17:00:00+00:00");
        assert_eq!((e - s).num_hours(), 24);
        // São Paulo skipped midnight on 2018-11-04: the day starts at 01:00.
        let job =
            Job::new(Client::default(), Database::new("x").unwrap(), chrono_tz::America::Sao_Paulo, Default::default());
        let (s, e) = job.day_bounds(NaiveDate::from_ymd_opt(2018, 11, 4).unwrap());
        assert_eq!(s.to_rfc3339(), "2018-11-04T03:00:00+00:00");
        assert_eq!((e - s).num_hours(), 23);
    }
}
