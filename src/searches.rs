//! Every saved search in one list: `searches.toml`'s (configuration, read-only from the API) and
//! those analysts saved through the API (`saved_searches` in ClickHouse). The API refuses to save
//! under a configured name, so a name means one search.

use chrono::{DateTime, Utc};
use schema::config::searches::{SavedSearch, SearchesConfig};
use serde::Serialize;
use store::{Database, StoreError};

/// A saved search and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub search: SavedSearch,
    /// `config` (searches.toml) or `api`.
    pub origin: &'static str,
    /// Who saved it through the API (the token's name) and when; absent for configured ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_at: Option<DateTime<Utc>>,
}

/// searches.toml's in file order, then the API's by name.
pub async fn all(
    config: &SearchesConfig,
    client: &clickhouse::Client,
    db: &Database,
) -> Result<Vec<Listed>, StoreError> {
    let mut out: Vec<Listed> = config
        .search
        .iter()
        .map(|s| Listed { search: s.clone(), origin: "config", saved_by: None, saved_at: None })
        .collect();
    for s in store::searches::list(client, db).await? {
        if config.get(&s.search.name).is_none() {
            out.push(Listed {
                search: s.search,
                origin: "api",
                saved_by: Some(s.saved_by),
                saved_at: Some(s.saved_at),
            });
        }
    }
    Ok(out)
}

/// The search called `name`, if any.
pub async fn find(
    config: &SearchesConfig,
    client: &clickhouse::Client,
    db: &Database,
    name: &str,
) -> Result<Option<Listed>, StoreError> {
    Ok(all(config, client, db).await?.into_iter().find(|s| s.search.name == name))
}
