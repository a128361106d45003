//! [`IntakeSeen`]: the ids each first-party channel has sent (table `intake_seen`, migration 006).
//! The intake writes a record's row after Kafka acknowledged its post and before it answers, so a
//! retried push of the same id is answered `duplicate` at once, long before the post is in `posts`.
//! The row keeps a hash of what was sent, not the text, so a re-push with other content can be told
//! apart from a plain retry.

use crate::error::ClickHouseError;
use crate::ident::Database;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One record sent by a channel.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct SeenRow {
    pub channel: String,
    pub id: String,
    pub content_hash: u64,
    /// The channel's own category of the record ("" when it gave none).
    pub category: String,
    /// Unix seconds, UTC.
    pub seen_at: u32,
}

/// Most ids per lookup (they travel as one bound array).
const LOOKUP_CHUNK: usize = 2000;

/// The `intake_seen` table of one database.
#[derive(Clone)]
pub struct IntakeSeen {
    client: Client,
    db: Database,
}

impl IntakeSeen {
    pub fn new(client: Client, db: Database) -> Self {
        IntakeSeen { client, db }
    }

    /// The content hash each of `ids` was first sent with, for the ids `channel` has sent before.
    pub async fn seen(&self, channel: &str, ids: &[&str]) -> Result<HashMap<String, u64>, ClickHouseError> {
        let sql =
            format!("SELECT ?fields FROM {}.intake_seen WHERE channel = ? AND id IN (SELECT arrayJoin(?))", self.db);
        let mut found = HashMap::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let rows = self
                .client
                .query(&sql)
                .bind(channel)
                .bind(chunk)
                .fetch_all::<SeenRow>()
                .await
                .map_err(|e| ClickHouseError::new("reading intake_seen", e))?;
            for row in rows {
                // The first sending is what a duplicate is compared with.
                let earliest = found.entry(row.id).or_insert((row.seen_at, row.content_hash));
                if row.seen_at < earliest.0 {
                    *earliest = (row.seen_at, row.content_hash);
                }
            }
        }
        Ok(found.into_iter().map(|(id, (_, hash))| (id, hash)).collect())
    }

    /// Records `rows` in one INSERT.
    pub async fn record(&self, rows: &[SeenRow]) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let fail = |e| ClickHouseError::new("writing intake_seen", e);
        let client = self.client.clone().with_database(self.db.as_str());
        let mut insert = client.insert::<SeenRow>("intake_seen").await.map_err(fail)?;
        for row in rows {
            insert.write(row).await.map_err(fail)?;
        }
        insert.end().await.map_err(fail)
    }
}
