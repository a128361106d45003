//! What the engine reads from ClickHouse: per alert key, the posts of the current window and of
//! each baseline sample by sentiment; the evidence posts of a window; the texts `watch_terms`
//! rules match. Straight from `posts` (not the hourly cubes), since windows slide by the minute.
//! Every query counts `sign` (a re-analysed post's cancelling row takes its old labels back) and
//! leaves out posts whose time is only the fetch time (`created_at_estimated`).
//!
//! Topic and place ids are spliced into SQL as literals: they are validated ids (`[a-z0-9_]`),
//! filtered to that alphabet again here so that a future id type cannot open an injection.

use crate::judge::Counts;
use crate::window::Windows;
use clickhouse::{Client, Row};
use schema::config::alerts::{AlertRule, RuleTopic};
use serde::Deserialize;
use std::collections::BTreeMap;
use store::{ClickHouseError, Database};

/// An alert key's topic and place (`"*"` for all).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub topic: String,
    pub place: String,
}

/// The counts of one key: now, and the samples that had data.
#[derive(Debug, Clone, Default)]
pub struct KeyCounts {
    pub now: Counts,
    pub history: Vec<Counts>,
}

#[derive(Debug, Row, Deserialize)]
struct CellRow {
    topic: String,
    place: String,
    k: i64,
    posts: i64,
    negative: i64,
    neutral: i64,
    positive: i64,
}

/// A quoted id literal; anything outside `[a-z0-9_]` is dropped (ids never hold it).
fn literal(id: &str) -> String {
    let clean: String = id.chars().filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
    format!("'{clean}'")
}

/// The SELECT expressions for the key's topic and place, and the WHERE fragments of the scope;
/// `search` is the condition of the rule's saved search (`SavedSearch::sql`, quoted literals).
fn scope_sql(rule: &AlertRule, search: Option<&str>) -> (String, String, String) {
    let mut filter = search.map(|c| format!(" AND ({c})")).unwrap_or_default();
    let topic = match &rule.topic {
        // A search is the scope in place of a topic: its posts count together, whatever their topics.
        _ if rule.search.is_some() => "'*'".to_owned(),
        Some(RuleTopic::All) => "'*'".to_owned(),
        Some(RuleTopic::One(t)) => {
            filter += &format!(" AND has(topics, {})", literal(t.as_str()));
            literal(t.as_str())
        }
        None => "arrayJoin(topics)".to_owned(),
    };
    let place = match (&rule.place, rule.per_place) {
        (Some(p), _) => {
            filter += &format!(" AND has(places, {})", literal(p.as_str()));
            literal(p.as_str())
        }
        // A post without a place then yields no row: it counts only in whole-city keys.
        (None, true) => "arrayJoin(places)".to_owned(),
        (None, false) => "'*'".to_owned(),
    };
    (topic, place, filter)
}

/// Counts per key for the current window and every sample, in one scan of the baseline's days.
pub async fn counts(
    client: &Client,
    db: &Database,
    rule: &AlertRule,
    search: Option<&str>,
    w: &Windows,
    data_since: i64,
) -> Result<BTreeMap<Scope, KeyCounts>, ClickHouseError> {
    let (topic, place, filter) = scope_sql(rule, search);
    // The time conditions go in PREWHERE: only the sample windows' rows are read beyond
    // created_at (a weekly rule reads 5 hours of four weeks, not four weeks), and the listed
    // ranges let ClickHouse skip the days between samples altogether.
    let sql = format!(
        "SELECT {topic} AS topic, {place} AS place, intDiv(? - toInt64(created_at) - 1, ?) AS k, \
         sum(toInt64(sign)) AS posts, sumIf(toInt64(sign), sentiment = 'negative') AS negative, \
         sumIf(toInt64(sign), sentiment = 'neutral') AS neutral, \
         sumIf(toInt64(sign), sentiment = 'positive') AS positive \
         FROM {db}.posts \
         PREWHERE created_at >= toDateTime(?) AND created_at < toDateTime(?) \
         AND (? - toInt64(created_at) - 1) % ? < ?{ranges} \
         WHERE created_at_estimated = 0{filter} \
         GROUP BY topic, place, k",
        ranges = sample_ranges(w),
    );
    let rows: Vec<CellRow> = client
        .query(&sql)
        .bind(w.end)
        .bind(w.period)
        .bind(w.earliest())
        .bind(w.end)
        .bind(w.end)
        .bind(w.period)
        .bind(w.width)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::new(format!("counting posts for rule {}", rule.name), e))?;
    Ok(assemble(rows, w, data_since))
}

/// ` AND (created_at in sample 0 OR … OR in sample K)` for seasonal rules (a few ranges, numbers
/// only); nothing for back-to-back windows, which cover the whole baseline anyway.
fn sample_ranges(w: &Windows) -> String {
    if w.period == w.width || w.samples > 64 {
        return String::new();
    }
    let ranges: Vec<String> = (0..=w.samples)
        .map(|k| {
            let start = w.sample_start(k);
            format!("(created_at >= toDateTime({start}) AND created_at < toDateTime({}))", start + w.width)
        })
        .collect();
    format!(" AND ({})", ranges.join(" OR "))
}

/// Groups rows by key. A sample with no row had no posts: it counts as an empty window, but only
/// when it lies after the first stored post (before that, there was no data, not no posts).
fn assemble(rows: Vec<CellRow>, w: &Windows, data_since: i64) -> BTreeMap<Scope, KeyCounts> {
    let mut by_key: BTreeMap<Scope, BTreeMap<i64, Counts>> = BTreeMap::new();
    for r in rows {
        let c = Counts { posts: r.posts, negative: r.negative, neutral: r.neutral, positive: r.positive };
        by_key.entry(Scope { topic: r.topic, place: r.place }).or_default().insert(r.k, c);
    }
    by_key
        .into_iter()
        .map(|(scope, mut cells)| {
            let now = cells.remove(&0).unwrap_or_default();
            let history = (1..=w.samples)
                .filter_map(|k| match cells.get(&k) {
                    Some(c) => Some(*c),
                    None => (w.sample_start(k) >= data_since).then(Counts::default),
                })
                .collect();
            (scope, KeyCounts { now, history })
        })
        .collect()
}

/// The first stored (dated) post at or after `since`, unix seconds; `i64::MAX` when none.
pub async fn data_since(client: &Client, db: &Database, since: i64) -> Result<i64, ClickHouseError> {
    let (n, first): (u64, i64) = client
        .query(&format!(
            "SELECT count(), toInt64(min(created_at)) FROM {db}.posts \
             WHERE created_at >= toDateTime(?) AND created_at_estimated = 0"
        ))
        .bind(since.max(0))
        .fetch_one()
        .await
        .map_err(|e| ClickHouseError::new("finding the first stored post", e))?;
    Ok(if n == 0 { i64::MAX } else { first })
}

/// A post shown as evidence (or matched by terms), current version only.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct PostRow {
    pub key: String,
    pub source: String,
    pub url: String,
    pub text_redacted: String,
    pub sentiment: String,
    pub score: f32,
    pub p_negative: f32,
    pub engagement: u64,
    pub created_at: i64,
    pub topics: Vec<String>,
    pub places: Vec<String>,
}

const POST_COLUMNS: &str = "key, source, url, text_redacted, sentiment, score, p_negative, \
     toUInt64(ifNull(likes, 0) + ifNull(shares, 0) + ifNull(replies, 0)) AS engagement, \
     toInt64(created_at) AS created_at, topics, places";

/// Up to `limit` posts of the window in `scope`, most negative first, then most engaged.
pub async fn evidence(
    client: &Client,
    db: &Database,
    w: &Windows,
    scope: &Scope,
    search: Option<&str>,
    limit: u64,
) -> Result<Vec<PostRow>, ClickHouseError> {
    let mut filter = search.map(|c| format!(" AND ({c})")).unwrap_or_default();
    if scope.topic != "*" {
        filter += &format!(" AND has(topics, {})", literal(&scope.topic));
    }
    if scope.place != "*" {
        filter += &format!(" AND has(places, {})", literal(&scope.place));
    }
    let order = "p_negative DESC, engagement DESC, key";
    posts_in_window(client, db, w, &filter, order, limit)
        .await
        .map_err(|e| ClickHouseError::new("reading evidence posts", e))
}

/// Every post of the rule's scope in the current window, for term matching in Rust (the matcher's
/// word boundaries and diacritic folding are beyond 18.16's SQL). Bounded by `limit`.
pub async fn window_posts(
    client: &Client,
    db: &Database,
    rule: &AlertRule,
    search: Option<&str>,
    w: &Windows,
    limit: u64,
) -> Result<Vec<PostRow>, ClickHouseError> {
    let (_, _, filter) = scope_sql(rule, search);
    posts_in_window(client, db, w, &filter, "created_at DESC", limit)
        .await
        .map_err(|e| ClickHouseError::new(format!("reading posts for rule {}", rule.name), e))
}

/// The current versions (FINAL, sign 1) of the dated posts of the window matching `filter`.
/// FINAL on 18.16 merges whole day partitions, so the keys of the window are selected first and
/// FINAL reads only those (a re-analysed post's older version must not show).
async fn posts_in_window(
    client: &Client,
    db: &Database,
    w: &Windows,
    filter: &str,
    order: &str,
    limit: u64,
) -> Result<Vec<PostRow>, clickhouse::error::Error> {
    let window = "created_at >= toDateTime(?) AND created_at < toDateTime(?)";
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM {db}.posts FINAL \
         PREWHERE key IN (SELECT key FROM {db}.posts PREWHERE {window} WHERE created_at_estimated = 0{filter}) \
         WHERE {window} AND created_at_estimated = 0 AND sign = 1{filter} ORDER BY {order} LIMIT ?"
    );
    client.query(&sql).bind(w.start()).bind(w.end).bind(w.start()).bind(w.end).bind(limit).fetch_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_samples_are_empty_windows_only_after_the_data_starts() {
        let w = Windows { end: 100 * 86_400, width: 3600, period: 86_400, samples: 4 };
        let row = |k, posts| CellRow {
            topic: "flooding".into(),
            place: "*".into(),
            k,
            posts,
            negative: 0,
            neutral: posts,
            positive: 0,
        };
        let all = assemble(vec![row(0, 9), row(2, 5)], &w, 0);
        let key = Scope { topic: "flooding".into(), place: "*".into() };
        let posts: Vec<i64> = all[&key].history.iter().map(|c| c.posts).collect();
        assert_eq!((all[&key].now.posts, posts), (9, vec![0, 5, 0, 0]));
        let young = assemble(vec![row(0, 9), row(2, 5)], &w, w.sample_start(2));
        assert_eq!(young[&key].history.len(), 2, "samples 3 and 4 predate the data");
    }

    #[test]
    fn seasonal_rules_list_their_sample_ranges() {
        let weekly = Windows { end: 100 * 86_400, width: 3600, period: 7 * 86_400, samples: 4 };
        let ranges = sample_ranges(&weekly);
        assert_eq!(ranges.matches("created_at >= toDateTime(").count(), 5, "{ranges}");
        assert!(ranges.contains(&format!("toDateTime({})", weekly.sample_start(4))));
        let back_to_back = Windows { end: 100 * 86_400, width: 3600, period: 3600, samples: 672 };
        assert_eq!(sample_ranges(&back_to_back), "");
    }
}
