//! The only values ever spliced into SQL text: a database name and a time-zone literal, both
//! validated here so that nothing else needs quoting. Everything user-supplied goes through `?` binds.

use crate::error::StoreError;
use std::fmt;

/// Where citypulse's tables live: a validated ClickHouse database name (`[A-Za-z_][A-Za-z0-9_]*`, at
/// most 64 characters) and, in cluster mode (`clickhouse.cluster`), the cluster it spans.
///
/// On a cluster each table is a `Replicated*MergeTree` named `<table>_local` on every server, with a
/// `Distributed` table under the plain name in front of it (see `cluster.rs`). Readers use the plain
/// names everywhere; only what must act on one server's rows (the writer's insert and lookup,
/// retention's partitions) asks for [`Database::stored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    name: String,
    cluster: Option<String>,
}

impl Database {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        Ok(Database { name: identifier("database", name)?, cluster: None })
    }

    /// The database of `clickhouse.database`, on `clickhouse.cluster` when one is set.
    pub fn from_config(cfg: &schema::config::services::ClickHouseConfig) -> Result<Self, StoreError> {
        let db = Database::new(&cfg.database)?;
        match cfg.cluster.as_deref() {
            Some(cluster) => db.on_cluster(cluster),
            None => Ok(db),
        }
    }

    /// The same database, spread over the servers of `cluster` (a name in ClickHouse's `remote_servers`).
    pub fn on_cluster(self, cluster: &str) -> Result<Self, StoreError> {
        Ok(Database { cluster: Some(identifier("cluster", cluster)?), ..self })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// The table that holds `table`'s rows on the server a client talks to: `<table>_local` on a
    /// cluster, `table` itself on a single server.
    pub fn stored(&self, table: &str) -> String {
        match self.cluster {
            Some(_) => format!("{table}_local"),
            None => table.to_owned(),
        }
    }

    /// ` ON CLUSTER <name>` in cluster mode, else nothing: for DDL that every server must run.
    pub fn on_cluster_clause(&self) -> String {
        self.cluster.as_ref().map(|c| format!(" ON CLUSTER {c}")).unwrap_or_default()
    }
}

fn identifier(what: &'static str, value: &str) -> Result<String, StoreError> {
    if schema::config::services::is_identifier(value) {
        Ok(value.to_owned())
    } else {
        Err(StoreError::InvalidName {
            what,
            value: value.to_owned(),
            why: "use [A-Za-z_][A-Za-z0-9_]*, at most 64 characters",
        })
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The city's IANA time zone, known to chrono-tz and made of characters that are safe inside a
/// single-quoted SQL literal (letters, digits, `/`, `_`, `+`, `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CityZone(chrono_tz::Tz);

impl CityZone {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let invalid = |why| StoreError::InvalidName { what: "time zone", value: name.to_owned(), why };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c)) {
            return Err(invalid("only letters, digits and / _ + - are allowed"));
        }
        name.parse::<chrono_tz::Tz>().map(CityZone).map_err(|_| invalid("not an IANA time zone"))
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_plain_words() {
        assert!(Database::new("citypulse_test1").is_ok());
        for bad in ["", "1abc", "a.b", "a;DROP", "a b", "a`b", "a'b"] {
            assert!(Database::new(bad).is_err(), "{bad:?}");
            assert!(Database::new("cp").and_then(|d| d.on_cluster(bad)).is_err(), "{bad:?}");
        }
        let single = Database::new("cp").expect("db");
        assert_eq!((single.stored("posts"), single.on_cluster_clause()), ("posts".into(), String::new()));
        let clustered = single.on_cluster("city").expect("cluster");
        assert_eq!(
            (clustered.stored("posts"), clustered.on_cluster_clause()),
            ("posts_local".into(), " ON CLUSTER city".into())
        );
    }

    #[test]
    fn zones_must_be_known_and_literal_safe() {
        assert_eq!(CityZone::new("Asia/Ho_Chi_Minh").map(CityZone::name).ok(), Some("Asia/Ho_Chi_Minh"));
        assert!(CityZone::new("Etc/GMT+7").is_ok());
        for bad in ["Mars/Olympus", "UTC'); DROP TABLE posts; --", "Asia/Ho Chi Minh"] {
            assert!(CityZone::new(bad).is_err(), "{bad:?}");
        }
    }
}
