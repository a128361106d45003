//! The central promise of the store: a stream with duplicate deliveries, re-analysed posts and stale
//! redeliveries gives trend tables whose counts and score sums equal, exactly, the sums over each
//! post's latest analysis. Scores are multiples of 1/64, so float sums are exact and compared with ==.

mod common;
mod support;

use chrono::Timelike;
use std::collections::BTreeMap;
use store::{Dimension, Granularity, TrendQuery, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

/// Every test here runs twice: on one server (`one_server::`) and on the two-replica cluster of
/// scripts/cluster.sh (`cluster::`), where the tables are replicated behind Distributed ones.
macro_rules! on_one_server_and_on_a_cluster {
    ($($name:ident($prefix:literal);)*) => {
        mod one_server {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = super::common::clickhouse_url() else { return };
                    super::$name(super::TestDb::new(&url, $prefix).await).await
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(t) = super::TestDb::on_cluster($prefix).await else { return };
                    super::$name(t).await
                }
            )*
        }
    };
}

on_one_server_and_on_a_cluster! {
    duplicates_and_reanalyses_give_exact_trend_tables("cp_exact");
    a_large_batch_of_long_keys_is_written_whole("cp_large");
    migrations_apply_from_empty_and_reapply_as_no_ops("cp_migr");
    keys_with_quotes_and_backslashes_are_recognised_on_redelivery("cp_quote");
    estimated_time_posts_are_stored_but_stay_out_of_the_trend_cubes("cp_estimated");
}

async fn duplicates_and_reanalyses_give_exact_trend_tables(t: TestDb) {
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let (all, latest) = stream(600, 20261126);
    let shutdown = CancellationToken::new();
    let mut totals = store::WriteReport::default();
    for batch in all.chunks(53) {
        let r = writer.write(batch.to_vec(), &shutdown).await.expect("write");
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        totals.inserted += r.inserted;
        totals.replaced += r.replaced;
        totals.duplicates += r.duplicates;
        totals.stale += r.stale;
        totals.rows_written += r.rows_written;
    }
    eprintln!(
        "deliveries {} keys {} -> inserted {} replaced {} duplicates {} stale {} rows {}",
        all.len(),
        latest.len(),
        totals.inserted,
        totals.replaced,
        totals.duplicates,
        totals.stale,
        totals.rows_written
    );
    assert_eq!(totals.inserted, latest.len());
    assert_eq!(totals.inserted + totals.replaced + totals.duplicates + totals.stale, all.len());
    assert!(totals.replaced > 100 && totals.duplicates > 100 && totals.stale > 10, "{totals:?}");

    for round in ["before merges", "after OPTIMIZE FINAL"] {
        for hourly in [true, false] {
            let expected = expected_cells(&latest, hourly);
            let actual = actual_cells(&t, hourly).await;
            assert_eq!(actual.len(), expected.len(), "{round}, hourly={hourly}: cell count");
            assert_eq!(actual, expected, "{round}, hourly={hourly}");
            eprintln!("{round}: {} {} cells equal", expected.len(), if hourly { "hourly" } else { "daily" });
        }
        let live: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts FINAL WHERE sign = 1").await;
        let net: i64 = t.scalar("SELECT toInt64(sum(sign)) FROM DB.posts").await;
        assert_eq!((live, net), (latest.len() as u64, latest.len() as i64), "{round}");
        for table in ["posts", "trends_hourly", "trends_daily"] {
            t.optimize(table).await;
        }
    }
    let rows: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts").await;
    assert_eq!(rows, latest.len() as u64, "every cancelled pair collapsed");

    // The query API: per-topic hourly and per-source daily numbers equal the expected ones.
    let queries = store::Queries::new(t.client.clone(), t.db.clone(), t.zone);
    let q = TrendQuery::new(ts(1_763_900_000), ts(1_764_500_000), Dimension::Topic, Granularity::Hour);
    let rows = queries.trends(&q).await.expect("trends");
    let mut want: BTreeMap<(i64, String), (i64, i64, i64, f64)> = BTreeMap::new();
    let tz: chrono_tz::Tz = ZONE.parse().expect("tz");
    for p in latest.values() {
        let local = p.created_at.with_timezone(&tz);
        let hour = p.created_at.timestamp() - i64::from(local.minute() * 60 + local.second());
        for topic in &p.topics {
            let w = want.entry((hour, topic.id.to_string())).or_default();
            w.0 += 1;
            match p.sentiment.label {
                schema::SentimentLabel::Positive => w.1 += 1,
                schema::SentimentLabel::Negative => w.2 += 1,
                schema::SentimentLabel::Neutral => {}
            }
            w.3 += f64::from(p.sentiment.score);
        }
    }
    assert_eq!(rows.len(), want.len());
    for r in &rows {
        let w = want[&(r.bucket.timestamp(), r.key.clone())];
        assert_eq!((r.posts, r.positive, r.negative), (w.0, w.1, w.2), "{r:?}");
        assert_eq!(r.avg_score, w.3 / w.0 as f64);
        assert_eq!(r.net_sentiment, (w.1 - w.2) as f64 / w.0 as f64);
        assert_eq!(r.bucket.minute(), 0);
    }
    let daily = queries
        .trends(&TrendQuery { by: Dimension::Source, granularity: Granularity::Day, ..q.clone() })
        .await
        .expect("daily");
    let total: i64 = daily.iter().map(|r| r.posts).sum();
    assert_eq!(total, latest.len() as i64, "by source, every post counted once");
    eprintln!("trends API: {} topic-hour rows and {} source-day rows match", rows.len(), daily.len());
    t.drop_db().await;
}

async fn a_large_batch_of_long_keys_is_written_whole(t: TestDb) {
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let created = ts(1_764_000_000);
    let posts: Vec<_> = (0..12_000)
        .map(|i| {
            let id = format!("{i:0>200}");
            post("mastodon_social", &id, "a", created, created, (10, 10, 44), &["traffic"], &[], "v1")
        })
        .collect();
    // 12 000 keys of 216 bytes: 2.6 MB of IN lists, far over ClickHouse's default max_query_size.
    for expect_new in [true, false] {
        let r = writer.write(posts.clone(), &CancellationToken::new()).await.expect("write");
        assert!(!r.post_by_post, "the lookup must not be refused");
        assert_eq!((r.inserted, r.duplicates), if expect_new { (12_000, 0) } else { (0, 12_000) });
    }
    t.drop_db().await;
}

async fn migrations_apply_from_empty_and_reapply_as_no_ops(t: TestDb) {
    let again = store::migrate(&t.client, &t.db, t.zone).await.expect("re-apply");
    assert!(again.applied.is_empty());
    assert_eq!(again.already, store::MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    let recorded: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.schema_migrations").await;
    assert_eq!(recorded, store::MIGRATIONS.len() as u64);
    let other = store::CityZone::new("Europe/Paris").expect("zone");
    let err = store::migrate(&t.client, &t.db, other).await.expect_err("zone change must be refused");
    assert!(err.to_string().contains("Asia/Ho_Chi_Minh"), "{err}");
    t.drop_db().await;
}

async fn keys_with_quotes_and_backslashes_are_recognised_on_redelivery(t: TestDb) {
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let created = ts(1_764_000_000);
    // The lookup binds every key into one array literal: escaping must survive hostile ids.
    let ids = ["a'b", "c\\'d", "e\\", "f`g\nh\t", "')) OR 1=1 --", "ngập'"];
    let posts: Vec<_> = ids
        .iter()
        .map(|id| post("reddit_saigon", id, "a", created, created, (10, 10, 44), &["traffic"], &[], "v1"))
        .collect();
    for expect_new in [true, false] {
        let r = writer.write(posts.clone(), &CancellationToken::new()).await.expect("write");
        assert!(r.rejected.is_empty() && !r.post_by_post, "{r:?}");
        assert_eq!((r.inserted, r.duplicates), if expect_new { (ids.len(), 0) } else { (0, ids.len()) });
    }
    t.drop_db().await;
}

async fn estimated_time_posts_are_stored_but_stay_out_of_the_trend_cubes(t: TestDb) {
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let created = ts(1_764_000_000);
    let dated = post("vnexpress_rss", "dated", "a", created, created, (10, 10, 44), &["traffic"], &[], "v1");
    let mut undated = post("vnexpress_rss", "undated", "a", created, created, (44, 10, 10), &["flooding"], &[], "v1");
    undated.created_at_estimated = true;
    let r = writer.write(vec![dated, undated], &CancellationToken::new()).await.expect("write");
    assert_eq!(r.inserted, 2);
    let stored: u64 = t.scalar("SELECT toUInt64(sum(created_at_estimated)) FROM DB.posts").await;
    assert_eq!(stored, 1, "the undated post is stored, marked");
    let in_cubes: i64 =
        t.scalar("SELECT toInt64(sum(posts)) FROM DB.trends_hourly WHERE topic = '*' AND place = '*'").await;
    assert_eq!(in_cubes, 1, "only the dated post is counted");
    let flooding: i64 = t.scalar("SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = 'flooding'").await;
    assert_eq!(flooding, 0);

    // Every migration applies again over existing objects, 4's ADD COLUMN included (18.16 has no
    // IF NOT EXISTS there): as after a crash between a migration's statements and its ledger row.
    for table in [t.db.stored("schema_migrations"), "schema_migrations".to_owned()] {
        let sql = format!("DROP TABLE IF EXISTS {}.{table}{}", t.db, t.db.on_cluster_clause());
        t.client.query(&sql).execute().await.expect("drop ledger");
    }
    let again = store::migrate(&t.client, &t.db, t.zone).await.expect("re-apply over an existing column");
    assert_eq!(again.applied, store::MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    t.drop_db().await;
}
