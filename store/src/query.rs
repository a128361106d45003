//! [`Queries`]: what analysts, the alert engine and the HTTP API ask. User input reaches SQL only
//! through `?` binds; the only text spliced in is the validated database name and fixed fragments.

use crate::error::{ClickHouseError, StoreError};
use crate::ident::{CityZone, Database};
use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use clickhouse::{Client, Row};
use schema::SentimentLabel;
use serde::Deserialize;

/// Bucket size of a trend query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

/// What a trend query groups by (besides the bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Topic,
    Place,
    Source,
}

/// A trend query. Buckets are those whose start (in the city's zone) is in `[since, until)`, with
/// `since` rounded down to its bucket.
#[derive(Debug, Clone)]
pub struct TrendQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub by: Dimension,
    pub granularity: Granularity,
    /// Only this topic (posts tagged with it).
    pub topic: Option<String>,
    /// Only this place.
    pub place: Option<String>,
    /// Only this source.
    pub source: Option<String>,
    /// Only posts with this label.
    pub sentiment: Option<SentimentLabel>,
}

impl TrendQuery {
    /// Every post in `[since, until)` by `by` and `granularity`, no filters (set the fields to add some).
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>, by: Dimension, granularity: Granularity) -> Self {
        Self { since, until, by, granularity, topic: None, place: None, source: None, sentiment: None }
    }
}

/// One bucket × key of a trend query.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    /// Start of the bucket in the city's zone.
    pub bucket: DateTime<Tz>,
    /// The topic, place or source id.
    pub key: String,
    pub posts: i64,
    /// Mean of P(positive) − P(negative).
    pub avg_score: f64,
    /// (positive − negative) / posts.
    pub net_sentiment: f64,
    pub positive: i64,
    pub neutral: i64,
    pub negative: i64,
}

/// A post behind a number.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct TopPost {
    pub key: String,
    pub source: String,
    pub url: String,
    pub text_redacted: String,
    pub sentiment: String,
    pub score: f32,
    pub topics: Vec<String>,
    pub places: Vec<String>,
    /// Unix seconds, UTC.
    pub created_at: u32,
}

#[derive(Debug, Row, Deserialize)]
pub(crate) struct RawTrend {
    pub(crate) bucket: u32,
    pub(crate) key: String,
    pub(crate) posts: i64,
    pub(crate) score_sum: f64,
    pub(crate) positive: i64,
    pub(crate) neutral: i64,
    pub(crate) negative: i64,
}

/// Which posts a page of `posts_page` lists.
#[derive(Debug, Clone)]
pub struct PostFilter {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub topic: Option<String>,
    pub place: Option<String>,
    pub source: Option<String>,
    pub sentiment: Option<SentimentLabel>,
    /// Only posts a saved search matches: its condition from `SavedSearch::sql` (schema), spliced
    /// as it is. Its strings are quoted literals built there, never raw user input.
    pub search: Option<String>,
}

/// Where the previous page ended: its last post's time and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAfter {
    pub created_at: u32,
    pub key: String,
}

/// Read-side API over the store's tables.
#[derive(Clone)]
pub struct Queries {
    pub(crate) client: Client,
    pub(crate) db: Database,
    pub(crate) zone: CityZone,
}

impl Queries {
    pub fn new(client: Client, db: Database, zone: CityZone) -> Self {
        Queries { client, db, zone }
    }

    pub async fn trends(&self, q: &TrendQuery) -> Result<Vec<TrendRow>, StoreError> {
        if q.until <= q.since {
            return Err(StoreError::Invalid(format!("until ({}) is not after since ({})", q.until, q.since)));
        }
        let tz = self.zone.tz();
        let db = &self.db;
        // Hour buckets are stored as the UTC instant of the local hour start; day buckets as the
        // local date. Both are read back as a number: seconds, or days since 1970-01-01.
        let (bucket_expr, table, range) = match q.granularity {
            Granularity::Hour => {
                ("toUInt32(bucket)", "trends_hourly", "bucket >= toDateTime(?) AND bucket < toDateTime(?)")
            }
            Granularity::Day => ("toUInt32(toUInt16(day))", "trends_daily", "day >= toDate(?) AND day < toDate(?)"),
        };
        let key = match q.by {
            Dimension::Topic => "topic",
            Dimension::Place => "place",
            Dimension::Source => "source",
        };
        // The cube holds '*' rows for "every topic" and "every place": pick the slice that counts
        // each post once per key.
        let mut filters = vec![range.to_owned()];
        let mut binds: Vec<String> = Vec::new();
        match q.by {
            Dimension::Topic => filters.push("topic != '*'".into()),
            Dimension::Place => filters.push("place != '*'".into()),
            Dimension::Source => {}
        }
        if q.by != Dimension::Topic || q.topic.is_some() {
            filters.push("topic = ?".into());
            binds.push(q.topic.clone().unwrap_or_else(|| "*".into()));
        }
        if q.by != Dimension::Place || q.place.is_some() {
            filters.push("place = ?".into());
            binds.push(q.place.clone().unwrap_or_else(|| "*".into()));
        }
        if let Some(source) = &q.source {
            filters.push("source = ?".into());
            binds.push(source.clone());
        }
        if let Some(s) = q.sentiment {
            filters.push("sentiment = ?".into());
            binds.push(s.as_str().to_owned());
        }
        let sql = format!(
            "SELECT {bucket_expr} AS b, {key} AS k, sum(posts) AS n, sum(score_sum) AS s, \
             sumIf(posts, sentiment = 'positive') AS pos, sumIf(posts, sentiment = 'neutral') AS neu, \
             sumIf(posts, sentiment = 'negative') AS neg \
             FROM {db}.{table} WHERE {} GROUP BY b, k HAVING n != 0 ORDER BY b, k",
            filters.join(" AND ")
        );
        let mut query = self.client.query(&sql);
        query = match q.granularity {
            Granularity::Hour => {
                let since = floor_hour(q.since.with_timezone(&tz)).timestamp();
                query.bind(since).bind(q.until.timestamp())
            }
            Granularity::Day => {
                let since = q.since.with_timezone(&tz).date_naive().to_string();
                // A day counts if it starts before `until`.
                let until_local = q.until.with_timezone(&tz);
                let last = if until_local.time() == chrono::NaiveTime::MIN {
                    until_local.date_naive()
                } else {
                    until_local.date_naive().succ_opt().unwrap_or(until_local.date_naive())
                };
                query.bind(since).bind(last.to_string())
            }
        };
        for b in binds {
            query = query.bind(b);
        }
        let raw: Vec<RawTrend> = query.fetch_all().await.map_err(|e| ClickHouseError::new("trends query", e))?;
        Ok(raw.into_iter().map(|r| self.trend_row(r, q.granularity)).collect())
    }

    pub(crate) fn trend_row(&self, r: RawTrend, g: Granularity) -> TrendRow {
        let tz = self.zone.tz();
        let bucket = match g {
            Granularity::Hour => {
                Utc.timestamp_opt(i64::from(r.bucket), 0).single().unwrap_or_default().with_timezone(&tz)
            }
            Granularity::Day => {
                let day = NaiveDate::default() + chrono::Duration::days(i64::from(r.bucket));
                local_midnight(tz, day)
            }
        };
        let n = r.posts as f64;
        TrendRow {
            bucket,
            key: r.key,
            posts: r.posts,
            avg_score: r.score_sum / n,
            net_sentiment: (r.positive - r.negative) as f64 / n,
            positive: r.positive,
            neutral: r.neutral,
            negative: r.negative,
        }
    }

    /// The posts behind a number: tagged `topic`, optionally with `sentiment`, published in
    /// `[since, until)`. Negative posts come most negative first, positive most positive first,
    /// otherwise newest first.
    pub async fn top_posts(
        &self,
        topic: &str,
        sentiment: Option<SentimentLabel>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TopPost>, StoreError> {
        let order = match sentiment {
            Some(SentimentLabel::Negative) => "score ASC, created_at DESC, key",
            Some(SentimentLabel::Positive) => "score DESC, created_at DESC, key",
            _ => "created_at DESC, key",
        };
        let sentiment_filter = if sentiment.is_some() { "AND sentiment = ?" } else { "" };
        let sql = format!(
            "SELECT ?fields FROM {}.posts FINAL WHERE sign = 1 AND created_at >= toDateTime(?) \
             AND created_at < toDateTime(?) AND has(topics, ?) {sentiment_filter} ORDER BY {order} LIMIT ?",
            self.db
        );
        let mut query = self.client.query(&sql).bind(secs(since)).bind(secs(until)).bind(topic);
        if let Some(s) = sentiment {
            query = query.bind(s.as_str());
        }
        query.bind(limit).fetch_all().await.map_err(|e| ClickHouseError::new("top posts query", e).into())
    }

    /// Up to `limit` posts matching `f`, newest first (then by key, descending), after `after`.
    /// FINAL reads only the keys the filter selects (on 18.16 it would merge whole days), and the
    /// keys are selected in time windows going back from the newest end, an hour first, then 8
    /// times longer each round: a common word over 90 days would otherwise put millions of keys
    /// in the `IN` set for a page of 50 (20 s on 10M posts, against ~0.1 s).
    pub async fn posts_page(
        &self,
        f: &PostFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<TopPost>, StoreError> {
        let newest = match after {
            Some(a) => f.until.min(DateTime::from_timestamp(i64::from(a.created_at) + 1, 0).unwrap_or(f.until)),
            None => f.until,
        };
        let mut span = chrono::Duration::hours(1);
        loop {
            let since = f.since.max(newest - span);
            let window = PostFilter { since, until: newest, ..f.clone() };
            let page = self.posts_window(&window, after, limit).await?;
            if page.len() as u32 >= limit || since == f.since {
                return Ok(page);
            }
            span = span * 8;
        }
    }

    async fn posts_window(
        &self,
        f: &PostFilter,
        after: Option<&PageAfter>,
        limit: u32,
    ) -> Result<Vec<TopPost>, StoreError> {
        let mut filter =
            String::from("created_at >= toDateTime(?) AND created_at < toDateTime(?) AND created_at_estimated = 0");
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [("topics", &f.topic), ("places", &f.place)] {
            if let Some(v) = value {
                filter.push_str(&format!(" AND has({column}, ?)"));
                binds.push(v.clone());
            }
        }
        if let Some(v) = &f.source {
            filter.push_str(" AND source = ?");
            binds.push(v.clone());
        }
        if let Some(s) = f.sentiment {
            filter.push_str(" AND sentiment = ?");
            binds.push(s.as_str().to_owned());
        }
        if let Some(condition) = &f.search {
            filter.push_str(&format!(" AND ({condition})"));
        }
        let cursor = if after.is_some() {
            " AND (created_at < toDateTime(?) OR (created_at = toDateTime(?) AND key < ?))"
        } else {
            ""
        };
        let db = &self.db;
        let sql = format!(
            "SELECT ?fields FROM {db}.posts FINAL PREWHERE key IN (SELECT key FROM {db}.posts WHERE {filter}) \
             WHERE sign = 1 AND {filter}{cursor} ORDER BY created_at DESC, key DESC LIMIT ?"
        );
        let mut query = self.client.query(&sql);
        for _ in 0..2 {
            query = query.bind(secs(f.since)).bind(secs(f.until));
            for b in &binds {
                query = query.bind(b.as_str());
            }
        }
        if let Some(a) = after {
            query = query.bind(a.created_at).bind(a.created_at).bind(a.key.as_str());
        }
        query.bind(limit).fetch_all().await.map_err(|e| ClickHouseError::new("posts query", e).into())
    }

    /// A saved search's series: every bucket in `[since, until)` (as [`Queries::trends`] buckets
    /// them) with the posts `condition` matches, by sentiment; `key` is empty. Counted on `posts`
    /// (the cubes know nothing of words): `sign` takes a re-analysed post's old labels back, and
    /// posts dated only by their fetch stay out, as in the cubes. `condition` is
    /// `SavedSearch::sql`'s, spliced as it is (quoted literals built there).
    pub async fn search_trends(
        &self,
        condition: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<TrendRow>, StoreError> {
        if until <= since {
            return Err(StoreError::Invalid(format!("until ({until}) is not after since ({since})")));
        }
        let tz = self.zone.tz();
        let zone = self.zone.name();
        let (bucket, start, end) = match granularity {
            Granularity::Hour => {
                // Whole buckets, as the cubes give them: the hour `until` falls in counts whole.
                let start = floor_hour(since.with_timezone(&tz)).with_timezone(&Utc);
                let last = floor_hour(until.with_timezone(&tz)).with_timezone(&Utc);
                let end = if last == until { until } else { last + chrono::Duration::hours(1) };
                (format!("toUInt32(toStartOfHour(created_at, '{zone}'))"), start, end)
            }
            Granularity::Day => {
                let first = since.with_timezone(&tz).date_naive();
                let until_local = until.with_timezone(&tz);
                let last = if until_local.time() == chrono::NaiveTime::MIN {
                    until_local.date_naive()
                } else {
                    until_local.date_naive().succ_opt().unwrap_or(until_local.date_naive())
                };
                let start = local_midnight(tz, first).with_timezone(&Utc);
                let end = local_midnight(tz, last).with_timezone(&Utc);
                (format!("toUInt32(toUInt16(toDate(created_at, '{zone}')))"), start, end)
            }
        };
        // The search in PREWHERE: only its columns are read for every post of the range, the
        // labels only for the granules where it matched.
        let sql = format!(
            "SELECT {bucket} AS bucket, '' AS key, sum(toInt64(sign)) AS posts, \
             sum(toFloat64(score) * sign) AS score_sum, sumIf(toInt64(sign), sentiment = 'positive') AS positive, \
             sumIf(toInt64(sign), sentiment = 'neutral') AS neutral, \
             sumIf(toInt64(sign), sentiment = 'negative') AS negative \
             FROM {}.posts PREWHERE {condition} \
             WHERE created_at >= toDateTime(?) AND created_at < toDateTime(?) AND created_at_estimated = 0 \
             GROUP BY bucket HAVING posts != 0 ORDER BY bucket",
            self.db
        );
        let raw: Vec<RawTrend> = self
            .client
            .query(&sql)
            .bind(secs(start))
            .bind(secs(end))
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("search trends query", e))?;
        Ok(raw.into_iter().map(|r| self.trend_row(r, granularity)).collect())
    }

    /// Posts stored before migration 008 (or indexed by an older encoding) and not re-indexed
    /// since, in `[since, until)`: searches cannot see them until `citypulse searches reindex`.
    pub async fn unindexed_posts(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT toUInt64(greatest(sum(toInt64(sign)), 0)) FROM {}.posts \
             WHERE created_at >= toDateTime(?) AND created_at < toDateTime(?) AND search_index != {}",
            self.db,
            schema::terms::SEARCH_INDEX_VERSION
        );
        let q = self.client.query(&sql).bind(secs(since)).bind(secs(until));
        q.fetch_one::<u64>().await.map_err(|e| ClickHouseError::new("counting posts without a search index", e).into())
    }

    /// Distinct authors of posts published in `[since, until)`, optionally only those tagged with
    /// `topic` and/or mentioning `place`.
    pub async fn distinct_authors(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        topic: Option<&str>,
        place: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut sql = format!(
            "SELECT uniqExact(author) FROM {}.posts FINAL WHERE sign = 1 AND created_at >= toDateTime(?) \
             AND created_at < toDateTime(?)",
            self.db
        );
        if topic.is_some() {
            sql.push_str(" AND has(topics, ?)");
        }
        if place.is_some() {
            sql.push_str(" AND has(places, ?)");
        }
        let mut query = self.client.query(&sql).bind(secs(since)).bind(secs(until));
        for v in topic.into_iter().chain(place) {
            query = query.bind(v);
        }
        query.fetch_one::<u64>().await.map_err(|e| ClickHouseError::new("distinct authors query", e).into())
    }
}

/// Seconds for a DateTime bind; clamped to ClickHouse's DateTime range.
pub(crate) fn secs(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn floor_hour(t: DateTime<Tz>) -> DateTime<Tz> {
    t.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

/// Midnight of `day` in `tz`; on a day that starts inside a DST gap, the first valid instant.
pub fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Tz> {
    let mut t = day.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt;
        }
        t += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t).with_timezone(&tz)
}
