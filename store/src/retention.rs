//! Retention by whole partitions (18.16 has no TTL): `posts` and `post_embeddings` are partitioned by
//! UTC day (`YYYYMMDD`), the trend tables and `emerging_reports` by month (`YYYYMM`). A partition is
//! dropped once all of it is older than the configured number of days; `emerging_reports` quotes
//! posts (redacted examples, keys) and goes with them; `search_cache` counts posts and goes with
//! them too, so that a search never shows a day whose posts are gone.
//!
//! Not `corrections` (migration 009): an analyst's correction is labelled training data and keeps
//! its post's redacted text after the post is dropped, so that a head can still be retrained on
//! it; revoking a correction blanks its text (store/src/corrections.rs). A retention of its own
//! for corrections is not built yet.

use crate::error::{ClickHouseError, StoreError};
use crate::ident::Database;
use chrono::{Datelike, NaiveDate};
use clickhouse::{Client, Row};
use serde::Deserialize;

/// Partitions dropped by [`apply_retention`], as `table/partition`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub dropped: Vec<String>,
}

#[derive(Debug, Row, Deserialize)]
struct Part {
    table: String,
    partition: String,
}

/// The last day a partition id covers: `YYYYMMDD` is that day, `YYYYMM` the month's last day.
fn last_day(partition: &str) -> Option<NaiveDate> {
    if !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match partition.len() {
        8 => NaiveDate::parse_from_str(partition, "%Y%m%d").ok(),
        6 => {
            let first = NaiveDate::parse_from_str(&format!("{partition}01"), "%Y%m%d").ok()?;
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }?;
            next.pred_opt()
        }
        _ => None,
    }
}

/// Which partitions of `table` fall out of `keep_days` counted back from `today`.
pub fn expired<'a>(partitions: impl IntoIterator<Item = &'a str>, today: NaiveDate, keep_days: u32) -> Vec<&'a str> {
    let first_kept = today - chrono::Duration::days(i64::from(keep_days));
    partitions.into_iter().filter(|p| last_day(p).is_some_and(|d| d < first_kept)).collect()
}

/// Drops `posts` partitions older than `posts_days` and trend partitions older than `trends_days`.
pub async fn apply_retention(
    client: &Client,
    db: &Database,
    today: NaiveDate,
    posts_days: u32,
    trends_days: u32,
) -> Result<RetentionReport, StoreError> {
    // On a cluster the rows are in `<table>_local`; with one shard this server's parts name every
    // partition, and a partition dropped from a replicated table is dropped on every replica, also
    // on one that is down now (when it is back). No ON CLUSTER: it would wait for a down replica.
    let tables = ["posts", "post_embeddings", "emerging_reports", "search_cache", "trends_hourly", "trends_daily"];
    let parts: Vec<Part> = client
        .query(
            "SELECT DISTINCT table, partition FROM system.parts WHERE database = ? AND active \
             AND has(?, table) ORDER BY table, partition",
        )
        .bind(db.as_str())
        .bind(tables.map(|t| db.stored(t)).to_vec())
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::new("listing partitions", e))?;
    let mut report = RetentionReport::default();
    for table in tables {
        // The emerging reports quote posts (redacted examples, keys), the search cache counts
        // them: they go with the posts.
        let keep = if table.starts_with("post") || table == "emerging_reports" || table == "search_cache" {
            posts_days
        } else {
            trends_days
        };
        let stored = db.stored(table);
        let names = parts.iter().filter(|p| p.table == stored).map(|p| p.partition.as_str());
        for partition in expired(names, today, keep) {
            // `partition` is all digits (checked by last_day): safe to splice as a number.
            client
                .query(&format!("ALTER TABLE {db}.{stored} DROP PARTITION {partition}"))
                .execute()
                .await
                .map_err(|e| ClickHouseError::new(format!("dropping {table} partition {partition}"), e))?;
            tracing::info!(table, partition, "retention: partition dropped");
            report.dropped.push(format!("{table}/{partition}"));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_expire_only_when_wholly_old() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let days = ["20261125", "20261027", "20261026", "20261025", "garbage", "2026-11-01"];
        assert_eq!(expired(days, today, 30), vec!["20261026", "20261025"]);
        let months = ["202610", "202609", "202412", "202411"];
        // 730 days before 2026-11-26 is 2024-11-26: November 2024 still has kept days.
        assert_eq!(expired(months, today, 730), Vec::<&str>::new());
        assert_eq!(expired(months, today, 60), vec!["202412", "202411"]);
        assert_eq!(last_day("202402"), NaiveDate::from_ymd_opt(2024, 2, 29));
    }
}
