//! Cluster mode (`clickhouse.cluster`): the same migrations, rewritten for a replicated ClickHouse.
//!
//! Every `CREATE TABLE db.t ... ENGINE = XMergeTree(args)` becomes two tables, both `ON CLUSTER`:
//! - `db.t_local`, `ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}', args)`,
//!   which holds the rows on every server (the `{shard}` and `{replica}` macros come from each
//!   server's config; scripts/cluster.sh writes them);
//! - `db.t`, `Distributed(cluster, db, t_local, cityHash64(<first ORDER BY column>))`, which every
//!   reader queries unchanged: same name, same columns, the whole cluster's rows.
//!
//! The trend views read `posts_local` and write `trends_*_local` on the server that took the insert;
//! their output is replicated like any insert. The writer inserts into `posts_local` on the one
//! server it talks to, and looks up stored versions there: replication is asynchronous, so only that
//! server is sure to hold the writer's own last writes (see `Writer`). With one shard every server
//! holds every row; a second shard would need the writer to route keys by the same hash (not built:
//! one shard of replicas carries the 50M posts a day of the README's sizing).
//!
//! 18.16 refuses `ALTER ... ON CLUSTER` on a Distributed table ("Table isn't replicated"), so a
//! column added to `t_local` is carried to `db.t` by dropping and re-creating the front (it holds no
//! rows: inserts through it are synchronous, [`client_options`]). [`Rewrite`] does all of it.

use crate::ident::{CityZone, Database};
use crate::migrate::{statements, MIGRATIONS};
use std::collections::HashMap;

/// Settings every client of a clustered database sends:
/// - `insert_deduplicate = 0`: a replicated table drops an inserted block identical to a recent one.
///   Two batches of different posts with the same labels in the same hour make identical trend
///   blocks; 18.16 kept them even with deduplication on (the test `identical_trend_blocks_...` passes
///   either way), but the servers that deduplicate the blocks views write would lose the second. The
///   writer's own lookup is what keeps a retried batch from counting twice, as on one server;
/// - `insert_distributed_sync = 1` and `prefer_localhost_replica = 1`: an insert through a
///   Distributed table (the alert history) returns once this server's replica has it, not from a
///   local queue a crash could lose, and a read through it right after is answered by this server,
///   so it sees the insert;
/// - `distributed_product_mode = local`: `IN (SELECT ... FROM posts)` inside a query on `posts` runs
///   on each shard against its own rows. Not needed with one shard (ClickHouse checks it only from
///   two shards on), set for the day there are more.
pub fn client_options(client: clickhouse::Client) -> clickhouse::Client {
    client
        .with_setting("insert_deduplicate", "0")
        .with_setting("insert_distributed_sync", "1")
        .with_setting("prefer_localhost_replica", "1")
        .with_setting("distributed_product_mode", "local")
}

/// The migrations' statements rewritten for `db`'s cluster. Knows the statement shapes the
/// migrations use (a test holds every one of them to running ON CLUSTER); `DROP TABLE` is only ever
/// used on views.
pub struct Rewrite<'a> {
    db: &'a Database,
    cluster: &'a str,
    /// Table name → sharding key: `cityHash64` of the first `ORDER BY` column of its `CREATE TABLE`,
    /// so that all rows of a key (a post's versions, an alert's events) land on one shard, where
    /// collapsing and replacing can see them together.
    sharding: HashMap<String, String>,
}

impl<'a> Rewrite<'a> {
    /// `None` for a database on one server. Reads every migration for the tables' sharding keys (a
    /// later `ALTER` re-creates a front that an earlier migration made).
    pub fn for_cluster(db: &'a Database, zone: CityZone) -> Option<Self> {
        let cluster = db.cluster()?;
        let mut sharding = HashMap::new();
        for stmt in MIGRATIONS.iter().flat_map(|m| statements(m.sql, db, zone)) {
            let Some(rest) = stmt.strip_prefix("CREATE TABLE IF NOT EXISTS") else { continue };
            let first = stmt
                .split("ORDER BY")
                .nth(1)
                .map(|s| s.trim_start().trim_start_matches('('))
                .and_then(|s| s.split([',', ')', '\n', ' ']).find(|w| !w.is_empty()))
                .map(|col| format!("cityHash64({col})"))
                .unwrap_or_else(|| "rand()".to_owned());
            sharding.insert(table_name(split_word(rest).0).to_owned(), first);
        }
        Some(Rewrite { db, cluster, sharding })
    }

    /// `stmt` as the statements that make the same change on every server of the cluster.
    pub fn statement(&self, stmt: &str) -> Vec<String> {
        let (db, on) = (self.db, self.db.on_cluster_clause());
        let prefix = |p: &str| stmt.strip_prefix(p).map(str::trim_start);
        if let Some(rest) = prefix("CREATE DATABASE IF NOT EXISTS") {
            return vec![format!("CREATE DATABASE IF NOT EXISTS {rest}{on}")];
        }
        if let Some(rest) = prefix("CREATE TABLE IF NOT EXISTS") {
            return self.create_table(rest);
        }
        if let Some(rest) = prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS") {
            // `db.v TO db.t AS SELECT ... FROM db.posts ...`: the view reads and writes local tables.
            let (view, body) = split_word(rest);
            let body = local_references(body, db);
            return vec![format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {view}{on} {body}")];
        }
        if let Some(rest) = prefix("DROP TABLE IF EXISTS") {
            return vec![format!("DROP TABLE IF EXISTS {rest}{on}")];
        }
        if let Some(rest) = prefix("ALTER TABLE") {
            let (table, change) = split_word(rest);
            let name = table_name(table);
            return vec![
                format!("ALTER TABLE {db}.{name}_local{on} {change}"),
                format!("DROP TABLE IF EXISTS {db}.{name}{on}"),
                self.distributed_front(name),
            ];
        }
        vec![stmt.to_owned()]
    }

    /// `db.t (columns) ENGINE = X(args) rest` → the replicated local table and its Distributed front.
    fn create_table(&self, rest: &str) -> Vec<String> {
        let (db, on) = (self.db, self.db.on_cluster_clause());
        let (table, after) = split_word(rest);
        let name = table_name(table);
        let Some((columns, engine_and_rest)) = after.split_once("ENGINE = ") else {
            return vec![format!("CREATE TABLE IF NOT EXISTS {rest}")]; // not a MergeTree: left alone
        };
        let engine_end = engine_and_rest.find(|c: char| c == '(' || c.is_whitespace()).unwrap_or(engine_and_rest.len());
        let (engine, tail) = engine_and_rest.split_at(engine_end);
        let (args, tail) = match tail.strip_prefix('(') {
            Some(inner) => {
                let close = matching_paren(inner);
                (inner[..close].trim(), &inner[close + 1..])
            }
            None => ("", tail),
        };
        let path = format!("'/clickhouse/tables/{{shard}}/{db}/{name}_local', '{{replica}}'");
        let args = if args.is_empty() { path } else { format!("{path}, {args}") };
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name}_local{on} {}ENGINE = Replicated{engine}({args}){tail}",
                columns.trim_start()
            ),
            self.distributed_front(name),
        ]
    }

    fn distributed_front(&self, name: &str) -> String {
        let (db, cluster) = (self.db, self.cluster);
        let key = self.sharding.get(name).map(String::as_str).unwrap_or("rand()");
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{name} ON CLUSTER {cluster} AS {db}.{name}_local \
             ENGINE = Distributed({cluster}, {db}, {name}_local, {key})"
        )
    }
}

/// `t` of `db.t`.
fn table_name(qualified: &str) -> &str {
    qualified.rsplit('.').next().unwrap_or(qualified)
}

/// Every `db.word` in `sql` becomes `db.word_local`.
fn local_references(sql: &str, db: &Database) -> String {
    let marker = format!("{db}.");
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(i) = rest.find(&marker) {
        let (before, after) = rest.split_at(i + marker.len());
        if rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(before); // `xdb.` is not `db.`
            rest = after;
            continue;
        }
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        out.push_str(before);
        out.push_str(&after[..end]);
        out.push_str("_local");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The first whitespace-separated word and what follows it.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// The index of the `)` closing a `(` just before `s`.
fn matching_paren(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return i,
            ')' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_rewritten() -> Vec<String> {
        let db = Database::new("cp").expect("db").on_cluster("city").expect("cluster");
        let zone = CityZone::new("Asia/Ho_Chi_Minh").expect("zone");
        let plain: Vec<String> = MIGRATIONS.iter().flat_map(|m| statements(m.sql, &db, zone)).collect();
        let rewrite = Rewrite::for_cluster(&db, zone).expect("clustered");
        plain.iter().flat_map(|s| rewrite.statement(s)).collect()
    }

    #[test]
    fn every_table_becomes_a_replicated_local_table_behind_a_distributed_front() {
        let all = all_rewritten();
        let posts = all.iter().find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS cp.posts_local")).expect("posts");
        assert!(posts.starts_with("CREATE TABLE IF NOT EXISTS cp.posts_local ON CLUSTER city (\n"), "{posts}");
        assert!(
            posts.contains(
                "ENGINE = ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/{shard}/cp/posts_local', '{replica}', sign, version)\nPARTITION BY"
            ),
            "{posts}"
        );
        assert!(all.contains(
            &"CREATE TABLE IF NOT EXISTS cp.posts ON CLUSTER city AS cp.posts_local ENGINE = Distributed(city, cp, posts_local, cityHash64(key))".to_owned()
        ));
        let summing =
            all.iter().find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS cp.trends_daily_local")).expect("daily");
        assert!(
            summing.contains("('/clickhouse/tables/{shard}/cp/trends_daily_local', '{replica}', (posts, score_sum))")
        );
        let events =
            all.iter().find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS cp.alert_events_local")).expect("events");
        assert!(events.contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cp/alert_events_local', '{replica}')\n"
        ));
        assert!(all.iter().any(|s| s.ends_with("Distributed(city, cp, alert_events_local, cityHash64(alert_id))")));
        assert!(all.iter().any(|s| s.ends_with("Distributed(city, cp, trends_daily_local, cityHash64(topic))")));
    }

    #[test]
    fn views_read_and_write_local_tables_and_ddl_runs_on_the_cluster() {
        let all = all_rewritten();
        let views: Vec<&String> = all.iter().filter(|s| s.contains("MATERIALIZED VIEW")).collect();
        assert_eq!(views.len(), 4);
        for v in views {
            assert!(v.contains(" ON CLUSTER city TO cp.trends_"), "{v}");
            assert!(v.contains("_local AS") && v.contains("FROM cp.posts_local"), "{v}");
            assert!(!v.contains("FROM cp.posts\n"), "{v}");
        }
        assert!(all.contains(&"DROP TABLE IF EXISTS cp.trends_hourly_mv ON CLUSTER city".to_owned()));
        let alter = all.iter().position(|s| s.starts_with("ALTER TABLE")).expect("alter");
        assert_eq!(
            all[alter],
            "ALTER TABLE cp.posts_local ON CLUSTER city ADD COLUMN created_at_estimated UInt8 DEFAULT 0"
        );
        assert_eq!(all[alter + 1], "DROP TABLE IF EXISTS cp.posts ON CLUSTER city");
        assert!(all[alter + 2].ends_with("Distributed(city, cp, posts_local, cityHash64(key))"));
        assert!(all.iter().all(|s| s.contains(" ON CLUSTER city")), "every statement runs on every server");
    }
}
