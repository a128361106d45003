//! Saved searches in ClickHouse: the ones analysts save through the API (`saved_searches`,
//! migration 008), and [`reindex`], which gives posts stored before that migration their search
//! columns.

use crate::error::{ClickHouseError, StoreError};
use crate::ident::Database;
use crate::rows::PostRow;
use chrono::{DateTime, Utc};
use clickhouse::{Client, Row};
use schema::config::searches::SavedSearch;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One row of `saved_searches`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct SearchRow {
    name: String,
    query: String,
    places: Vec<String>,
    sources: Vec<String>,
    description: String,
    saved_by: String,
    saved_at: u32,
    deleted: u8,
    version: u64,
}

/// A search saved through the API, with who saved it and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSearch {
    #[serde(flatten)]
    pub search: SavedSearch,
    pub saved_by: String,
    pub saved_at: DateTime<Utc>,
}

/// The live API-saved searches, by name.
pub async fn list(client: &Client, db: &Database) -> Result<Vec<StoredSearch>, StoreError> {
    // argMax over the whole row: the latest save or deletion of each name wins, merged or not.
    // (Aliases differ from the columns: 18.16 would read `version` in argMax as the alias.)
    let sql = format!(
        "SELECT name, argMax(query, version) AS q, argMax(places, version) AS pl, \
         argMax(sources, version) AS so, argMax(description, version) AS de, \
         argMax(saved_by, version) AS by, argMax(saved_at, version) AS at, \
         argMax(deleted, version) AS gone, max(version) AS v \
         FROM {db}.saved_searches GROUP BY name HAVING gone = 0 ORDER BY name"
    );
    let rows: Vec<SearchRow> =
        client.query(&sql).fetch_all().await.map_err(|e| ClickHouseError::new("reading saved searches", e))?;
    Ok(rows
        .into_iter()
        .map(|r| StoredSearch {
            saved_at: DateTime::from_timestamp(i64::from(r.saved_at), 0).unwrap_or_default(),
            saved_by: r.saved_by,
            search: SavedSearch {
                name: r.name,
                query: r.query,
                places: r.places,
                sources: r.sources,
                description: r.description,
            },
        })
        .collect())
}

/// Saves `search` (replacing one of the same name) as `by`, at `at`.
pub async fn save(
    client: &Client,
    db: &Database,
    search: &SavedSearch,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    write(client, db, search.clone(), by, at, false).await
}

/// Deletes the search `name` as `by`: later reads do not list it.
pub async fn delete(client: &Client, db: &Database, name: &str, by: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    let gone = SavedSearch {
        name: name.to_owned(),
        query: String::new(),
        places: vec![],
        sources: vec![],
        description: String::new(),
    };
    write(client, db, gone, by, at, true).await
}

async fn write(
    client: &Client,
    db: &Database,
    s: SavedSearch,
    by: &str,
    at: DateTime<Utc>,
    deleted: bool,
) -> Result<(), StoreError> {
    let row = SearchRow {
        name: s.name,
        query: s.query,
        places: s.places,
        sources: s.sources,
        description: s.description,
        saved_by: by.to_owned(),
        saved_at: u32::try_from(at.timestamp().max(0)).unwrap_or(u32::MAX),
        // Milliseconds: two saves of one name in the same second still order.
        version: u64::try_from(at.timestamp_millis().max(0)).unwrap_or(0),
        deleted: u8::from(deleted),
    };
    let fail = |e| ClickHouseError::new("saving a search", e);
    let client = client.clone().with_database(db.as_str());
    let mut insert = client.insert::<SearchRow>("saved_searches").await.map_err(fail)?;
    insert.write(&row).await.map_err(fail)?;
    insert.end().await.map_err(fail)?;
    Ok(())
}

/// What [`reindex`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReindexReport {
    /// Day partitions where posts were rewritten.
    pub days: usize,
    /// Live posts written again with their index.
    pub posts: u64,
    /// Posts found live twice (an indexed and an older unindexed version, left by an interrupted
    /// run) whose older version was cancelled.
    pub healed: u64,
}

/// Gives every live post stored before migration 008 its search columns, one UTC day at a time,
/// as the writer replaces a re-analysed post: the post is written again with its index at a new
/// version, then its old version is cancelled (a −1 copy), in one INSERT; the trend cubes see +1
/// and −1 of the same labels and do not move. New rows go first, so an INSERT cut short (18.16
/// keeps the rows of a chunked HTTP body that ended early) can leave a post live twice but never
/// lose one; the next run finds such a post and cancels its older version. Run it with the store
/// stopped (as every upgrade): a re-analysis written meanwhile could cancel a version twice.
/// `progress` hears (day, posts of the day) after each day.
pub async fn reindex(
    client: &Client,
    db: &Database,
    mut progress: impl FnMut(u32, u64),
) -> Result<ReindexReport, StoreError> {
    let posts = db.stored("posts");
    let current = schema::terms::SEARCH_INDEX_VERSION;
    // A day is done when its rows of another encoding cancel out (pairs not merged yet sum to 0).
    let days: Vec<(u32, u64)> = client
        .query(&format!(
            "SELECT toYYYYMMDD(created_at) AS d, toUInt64(count()) FROM {db}.{posts} WHERE search_index != {current} \
             GROUP BY d HAVING sum(toInt64(sign)) != 0 ORDER BY d"
        ))
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::new("finding posts without a search index", e))?;
    let mut report = ReindexReport::default();
    for (day, unindexed_rows) in days {
        // A day in slices by key hash (every version of a post in one slice), so that a busy day
        // is never held in memory whole: about SLICE_ROWS rows of the old encoding a slice.
        let slices = unindexed_rows.div_ceil(SLICE_ROWS).max(1);
        let mut written = 0u64;
        for slice in 0..slices {
            let rows: Vec<PostRow> = client
                .query(&format!(
                    "SELECT ?fields FROM {db}.{posts} WHERE toYYYYMMDD(created_at) = ? AND cityHash64(key) % ? = ?"
                ))
                .bind(day)
                .bind(slices)
                .bind(slice)
                .fetch_all()
                .await
                .map_err(|e| ClickHouseError::new("reading a day's posts to index", e))?;
            let plan = plan_day(rows);
            write_plan(client, db, &plan).await?;
            written += plan.new.len() as u64;
            report.healed += plan.healed;
        }
        report.days += usize::from(written > 0);
        report.posts += written;
        progress(day, written);
    }
    Ok(report)
}

/// Rows of the old encoding read at a time by [`reindex`] (with their texts: ~100 MB).
const SLICE_ROWS: u64 = 200_000;

/// One INSERT: the new rows, then the cancelling ones.
async fn write_plan(client: &Client, db: &Database, plan: &DayPlan) -> Result<(), StoreError> {
    if plan.new.is_empty() && plan.cancel.is_empty() {
        return Ok(());
    }
    let table_client = client.clone().with_database(db.as_str());
    let fail = |e| ClickHouseError::new("writing re-indexed posts", e);
    let mut insert = table_client.insert::<PostRow>(&db.stored("posts")).await.map_err(fail)?;
    for row in plan.new.iter().chain(&plan.cancel) {
        insert.write(row).await.map_err(fail)?;
    }
    insert.end().await.map_err(fail)?;
    Ok(())
}

/// What one day's re-indexing writes: new rows first, then the cancelling ones.
#[derive(Debug, Default)]
struct DayPlan {
    new: Vec<PostRow>,
    cancel: Vec<PostRow>,
    healed: u64,
}

/// For each key of the day: its live versions (a +1 row not cancelled by a −1 of the same version).
/// A live unindexed version is cancelled; it is written again, indexed, above every version of the
/// key, unless the key already has a live indexed version.
fn plan_day(rows: Vec<PostRow>) -> DayPlan {
    let mut by_key: HashMap<String, Vec<PostRow>> = HashMap::new();
    for r in rows {
        by_key.entry(r.key.clone()).or_default().push(r);
    }
    let mut plan = DayPlan::default();
    for rows in by_key.into_values() {
        let top = rows.iter().map(|r| r.version).max().unwrap_or(0);
        let live = live_rows(rows);
        let (indexed, unindexed): (Vec<PostRow>, Vec<PostRow>) =
            live.into_iter().partition(|r| r.search_index == schema::terms::SEARCH_INDEX_VERSION);
        let Some(latest) = unindexed.iter().max_by_key(|r| r.version) else { continue };
        if indexed.is_empty() {
            let mut row = PostRow { version: top + 1, ..latest.clone() };
            row.index_for_search();
            plan.new.push(row);
        } else {
            plan.healed += 1;
        }
        plan.cancel.extend(unindexed.iter().map(PostRow::cancelling));
    }
    plan
}

/// The +1 rows whose (key, version) has no −1 row among `rows`.
fn live_rows(rows: Vec<PostRow>) -> Vec<PostRow> {
    let mut net: HashMap<u64, i64> = HashMap::new();
    for r in &rows {
        *net.entry(r.version).or_default() += i64::from(r.sign);
    }
    rows.into_iter().filter(|r| r.sign == 1 && net.get_mut(&r.version).is_some_and(|n| std::mem::take(n) > 0)).collect()
}
