//! The test ClickHouse server is reachable from Rust through the `clickhouse` crate: create a table,
//! insert rows, read them back (18.16 needs validation off; see DESIGN.md).

mod common;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Sample {
    key: String,
    hour: u32,
    score: f32,
}

#[tokio::test]
async fn create_insert_and_read_back() {
    let Some(url) = common::clickhouse_url() else { return };
    let client = clickhouse::Client::default().with_url(url).with_validation(false);
    let table = common::unique_name("smoke");
    client
        .query(&format!(
            "CREATE TABLE {table} (key String, hour UInt32, score Float32) ENGINE = MergeTree ORDER BY key"
        ))
        .execute()
        .await
        .expect("create table");
    let rows: Vec<Sample> = (0..1000)
        .map(|i| Sample { key: format!("mastodon:{i:04}"), hour: 1_700_000_000 + i, score: i as f32 / 1000.0 })
        .collect();
    let mut insert = client.insert::<Sample>(&table).await.expect("start insert");
    for row in &rows {
        insert.write(row).await.expect("write row");
    }
    insert.end().await.expect("end insert");
    let back = client
        .query(&format!("SELECT ?fields FROM {table} WHERE hour >= ? ORDER BY key"))
        .bind(1_700_000_000u32)
        .fetch_all::<Sample>()
        .await
        .expect("select");
    assert_eq!(back, rows);
    client.query(&format!("DROP TABLE {table}")).execute().await.expect("drop");
}
