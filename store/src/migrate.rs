//! Numbered migrations (`store/migrations/NNN_name.sql`, embedded at build time), applied in order
//! and recorded in `schema_migrations`. Every statement is `IF NOT EXISTS` (or, for 18.16's
//! `ADD COLUMN` which has no such clause, skipped when the column exists), so a migration that was
//! interrupted half-way is simply applied again. Statements are sent one per request (ClickHouse
//! does not take several) with `${db}` and `${tz}` replaced by validated values.

use crate::error::{ClickHouseError, StoreError};
use crate::ident::{CityZone, Database};
use clickhouse::Client;

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in the order they are applied. Append only: never edit a released one.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "schema_migrations", sql: include_str!("../migrations/001_schema_migrations.sql") },
    Migration { version: 2, name: "posts", sql: include_str!("../migrations/002_posts.sql") },
    Migration { version: 3, name: "trends", sql: include_str!("../migrations/003_trends.sql") },
    Migration { version: 4, name: "estimated_time", sql: include_str!("../migrations/004_estimated_time.sql") },
    Migration { version: 5, name: "alerts", sql: include_str!("../migrations/005_alerts.sql") },
    Migration { version: 6, name: "intake_seen", sql: include_str!("../migrations/006_intake_seen.sql") },
    Migration { version: 7, name: "emerging", sql: include_str!("../migrations/007_emerging.sql") },
    Migration { version: 8, name: "searches", sql: include_str!("../migrations/008_searches.sql") },
    Migration { version: 9, name: "corrections", sql: include_str!("../migrations/009_corrections.sql") },
];

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions applied by this run.
    pub applied: Vec<u32>,
    /// Versions that were already recorded.
    pub already: Vec<u32>,
}

/// The statements of `sql` with comments removed and placeholders filled in.
pub fn statements(sql: &str, db: &Database, zone: CityZone) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("${db}", db.as_str())
        .replace("${tz}", zone.name());
    text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Creates the database if needed and applies every migration not yet recorded. Safe to run
/// concurrently and repeatedly. Fails if the trend views were built for another time zone.
///
/// In cluster mode (`db.cluster()`) every statement is rewritten by [`crate::cluster::Rewrite`] and
/// runs `ON CLUSTER`: each waits until every server has run it (18.16's `distributed_ddl_task_timeout`,
/// 180 s), so migrate with every replica up.
pub async fn migrate(client: &Client, db: &Database, zone: CityZone) -> Result<MigrateReport, StoreError> {
    // Nothing to apply: no DDL at all, so a stage starts even while a replica is down (every
    // statement ON CLUSTER waits for all of them).
    if let Ok(applied) = applied_versions(client, db).await {
        if MIGRATIONS.iter().all(|m| applied.contains(&m.version)) {
            check_layout(client, db).await?;
            check_zone(client, db, zone).await?;
            return Ok(MigrateReport { applied: Vec::new(), already: MIGRATIONS.iter().map(|m| m.version).collect() });
        }
    }
    check_layout(client, db).await?;
    let rewrite = crate::cluster::Rewrite::for_cluster(db, zone);
    let for_server = |stmt: String| match &rewrite {
        Some(rewrite) => rewrite.statement(&stmt),
        None => vec![stmt],
    };
    for stmt in for_server(format!("CREATE DATABASE IF NOT EXISTS {db}")) {
        exec(client, &stmt, 0, "database").await?;
    }
    // The ledger itself must exist before it can be read.
    let ledger = &MIGRATIONS[0];
    for stmt in statements(ledger.sql, db, zone).into_iter().flat_map(for_server) {
        exec(client, &stmt, ledger.version, ledger.name).await?;
    }
    let ledger_table = db.stored("schema_migrations");
    let applied = applied_versions(client, db).await?;
    let mut report = MigrateReport::default();
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            report.already.push(m.version);
            continue;
        }
        for stmt in statements(m.sql, db, zone).into_iter().flat_map(for_server) {
            if let Some((table, column)) = added_column(&stmt) {
                if column_exists(client, db, table, column).await? {
                    continue;
                }
                // Stages started together migrate together: another may add the column between
                // the check and this ALTER, which then fails although the column is there.
                if let Err(e) = exec(client, &stmt, m.version, m.name).await {
                    if column_exists(client, db, table, column).await? {
                        continue;
                    }
                    return Err(e);
                }
                continue;
            }
            exec(client, &stmt, m.version, m.name).await?;
        }
        client
            .query(&format!("INSERT INTO {db}.{ledger_table} (version, name, applied_at) VALUES (?, ?, now())"))
            .bind(m.version)
            .bind(m.name)
            .execute()
            .await
            .map_err(|e| StoreError::Migration {
                version: m.version,
                name: m.name,
                source: ClickHouseError::new("recording", e),
            })?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        report.applied.push(m.version);
    }
    check_zone(client, db, zone).await?;
    Ok(report)
}

/// The versions the ledger records. It is read (and written) on this server's own table: on a
/// cluster a read through the Distributed front may reach a replica that has not fetched the last
/// rows yet.
async fn applied_versions(client: &Client, db: &Database) -> Result<Vec<u32>, StoreError> {
    let sql = format!("SELECT DISTINCT version FROM {db}.{} ORDER BY version", db.stored("schema_migrations"));
    let applied =
        client.query(&sql).fetch_all().await.map_err(|e| ClickHouseError::new("reading schema_migrations", e))?;
    Ok(applied)
}

/// Refuses a database laid out for the other mode: `clickhouse.cluster` switched on for a
/// database made on one server (migration 4 would drop its `posts` to re-create the Distributed
/// front, and the old trend tables would stay in front of empty replicated ones), or switched off
/// for a clustered one (the writer would read its own writes through a Distributed table).
async fn check_layout(client: &Client, db: &Database) -> Result<(), StoreError> {
    let engine: Vec<String> = client
        .query("SELECT engine FROM system.tables WHERE database = ? AND name = 'posts'")
        .bind(db.as_str())
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::new("reading system.tables", e))?;
    let Some(engine) = engine.first() else { return Ok(()) };
    match (db.cluster(), engine == "Distributed") {
        (Some(_), true) | (None, false) => Ok(()),
        (Some(cluster), false) => Err(StoreError::Invalid(format!(
            "clickhouse.cluster = {cluster:?}, but {db}.posts is a {engine} table made on one server: \
             a database does not move to a cluster in place; copy it into a new database made with the cluster set"
        ))),
        (None, true) => Err(StoreError::Invalid(format!(
            "{db}.posts is a Distributed table, made in cluster mode: set clickhouse.cluster to its cluster's name"
        ))),
    }
}

/// `(table, column)` of an `ALTER TABLE db.table [ON CLUSTER c] ADD COLUMN column ...` statement.
fn added_column(stmt: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = stmt.split_whitespace().take(9).collect();
    match words.as_slice() {
        ["ALTER", "TABLE", table, "ADD", "COLUMN", column, ..]
        | ["ALTER", "TABLE", table, "ON", "CLUSTER", _, "ADD", "COLUMN", column] => {
            Some((table.rsplit('.').next()?, column))
        }
        _ => None,
    }
}

async fn column_exists(client: &Client, db: &Database, table: &str, column: &str) -> Result<bool, StoreError> {
    let n: u64 = client
        .query("SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?")
        .bind(db.as_str())
        .bind(table)
        .bind(column)
        .fetch_one()
        .await
        .map_err(|e| ClickHouseError::new("reading system.columns", e))?;
    Ok(n > 0)
}

/// The views bake the zone into their SELECT; a changed `city.time_zone` would silently mix zones.
async fn check_zone(client: &Client, db: &Database, zone: CityZone) -> Result<(), StoreError> {
    let create: String = client
        .query(&format!("SHOW CREATE TABLE {db}.trends_hourly_mv"))
        .fetch_one()
        .await
        .map_err(|e| ClickHouseError::new("reading the trend view", e))?;
    if create.contains(&format!("'{}'", zone.name())) {
        return Ok(());
    }
    let found = create
        .split("toStartOfHour(created_at, '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or("unknown")
        .to_owned();
    Err(StoreError::TimeZoneChanged { found, configured: zone.name().to_owned() })
}

async fn exec(client: &Client, sql: &str, version: u32, name: &'static str) -> Result<(), StoreError> {
    client.query(sql).execute().await.map_err(|e| StoreError::Migration {
        version,
        name,
        source: ClickHouseError::new(sql.lines().next().unwrap_or_default().to_owned(), e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_split_into_statements() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
        }
        let db = Database::new("cp").expect("db");
        let zone = CityZone::new("Asia/Ho_Chi_Minh").expect("zone");
        let trends = statements(MIGRATIONS[2].sql, &db, zone);
        assert_eq!(trends.len(), 4);
        assert!(trends[2].contains("toStartOfHour(created_at, 'Asia/Ho_Chi_Minh')"));
        assert!(trends.iter().all(|s| !s.contains("${") && !s.contains("--")));
        assert!(trends[0].starts_with("CREATE TABLE IF NOT EXISTS cp.trends_hourly"));
        let estimated = statements(MIGRATIONS[3].sql, &db, zone);
        assert_eq!(added_column(&estimated[0]), Some(("posts", "created_at_estimated")));
        assert_eq!(added_column(&trends[0]), None);
        let on_cluster = "ALTER TABLE cp.posts_local ON CLUSTER city ADD COLUMN created_at_estimated UInt8 DEFAULT 0";
        assert_eq!(added_column(on_cluster), Some(("posts_local", "created_at_estimated")));
        // The zone check reads the hourly view's definition; the recreated view keeps its shape.
        assert!(estimated[3].contains("toStartOfHour(created_at, 'Asia/Ho_Chi_Minh')"));
        assert!(estimated[3].contains("WHERE created_at_estimated = 0"));
    }
}
