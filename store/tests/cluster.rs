//! The store on a replicated ClickHouse (scripts/cluster.sh: ZooKeeper and one shard of two 18.16
//! replicas on 127.0.0.1). The exactness suite runs on it too (exactness.rs, `cluster::`); here, the
//! replica the writer does not talk to is SIGKILLed mid-stream and started again: the writer goes on
//! without it, and once back it fetches what it missed, so that each replica on its own holds every
//! post once and exact trend tables.
//!
//! (The writer's own server killed mid-stream is fault.rs's case: the writer waits for it, the same
//! code on one server or a cluster.)
//!
//! The tests on the cluster run one at a time (`.config/nextest.toml`, and [`ONE_AT_A_TIME`] for
//! `cargo test`): a replica killed here must not stall another test's ON CLUSTER statements.

mod common;
mod support;

use std::process::Command;
use store::{Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

/// `cargo test` runs a binary's tests on threads at once; nextest has its test group instead.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kill(pid_file: &std::path::Path) {
    let pid = std::fs::read_to_string(pid_file).expect("replica pid file");
    let status = Command::new("kill").args(["-9", pid.trim()]).status().expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

/// Started again however the test ends, so a failed assertion leaves the cluster whole for the rest
/// of the suite.
struct Restart<'a>(&'a common::TestCluster);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        // No assertion here: a panic while the test is already failing would abort the whole run.
        match Command::new("sh").args(["-c", &self.0.start]).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("{} failed: {other:?}", self.0.start),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_loses_nothing_and_catches_up() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(cluster) = common::cluster() else { return };
    let Some(t) = TestDb::on_cluster("cp_replica").await else { return };
    let engine = |table: &'static str| {
        let sql = format!("SELECT engine FROM system.tables WHERE database = '{}' AND name = '{table}'", t.db);
        t.client.query(&sql).fetch_one::<String>()
    };
    assert_eq!(engine("posts_local").await.expect("engine"), "ReplicatedVersionedCollapsingMergeTree");
    assert_eq!(engine("trends_hourly_local").await.expect("engine"), "ReplicatedSummingMergeTree");
    assert_eq!(engine("posts").await.expect("engine"), "Distributed");

    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let (all, latest) = stream(900, 20261203);
    let batches: Vec<_> = all.chunks(50).collect();
    let (down_at, up_at) = (batches.len() / 4, batches.len() * 3 / 4);
    let shutdown = CancellationToken::new();
    let mut restart = None;
    for (i, batch) in batches.iter().enumerate() {
        if i == down_at {
            kill(&cluster.pid_files[1]);
            restart = Some(Restart(&cluster));
            // Written on only once replica 1 counts replica 2 out (its ZooKeeper session expired).
            let started = std::time::Instant::now();
            while active_replicas(&t).await != 1 {
                assert!(started.elapsed().as_secs() < 60, "replica 2 still counted active a minute after SIGKILL");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            eprintln!("replica 2 SIGKILLed before batch {i} of {}, out after {:?}", batches.len(), started.elapsed());
        }
        if i == up_at {
            drop(restart.take());
            eprintln!("replica 2 started again before batch {i}");
        }
        let r = writer.write(batch.to_vec(), &shutdown).await.expect("write");
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    }

    // Each replica on its own, through its local tables: every post live once, the trends exact.
    t.settle().await;
    for (n, replica) in t.replicas.iter().enumerate() {
        let live: u64 = replica
            .query(&format!("SELECT toUInt64(count()) FROM {}.posts_local FINAL WHERE sign = 1", t.db))
            .fetch_one()
            .await
            .expect("live rows");
        assert_eq!(live, latest.len() as u64, "replica {}: live posts", n + 1);
        for hourly in [true, false] {
            let table = if hourly { "trends_hourly_local" } else { "trends_daily_local" };
            let cells = cells_from(replica, &format!("{}.{table}", t.db), hourly).await;
            let expected = expected_cells(&latest, hourly);
            let wrong = expected.iter().filter(|(k, v)| cells.get(*k) != Some(*v)).count();
            let extra = cells.keys().filter(|k| !expected.contains_key(*k)).count();
            assert_eq!((wrong, extra), (0, 0), "replica {}: {table}: cells wrong or missing, cells extra", n + 1);
        }
        eprintln!("replica {}: {} live posts, trend tables exact", n + 1, live);
    }
    t.drop_db().await;
}

/// How many replicas of `posts_local` the first replica sees active.
async fn active_replicas(t: &TestDb) -> u8 {
    let sql =
        format!("SELECT active_replicas FROM system.replicas WHERE database = '{}' AND table = 'posts_local'", t.db);
    t.client.query(&sql).fetch_one().await.expect("system.replicas")
}

/// Three batches of different posts with the same labels in the same hour make identical trend
/// blocks, which a replicated table may drop as duplicate inserts (`store::cluster::client_options`
/// turns that off; 18.16 kept them even with it on): all three must be counted. And a database made
/// on one server is refused in cluster mode rather than migrated in place, and the other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_trend_blocks_from_different_posts_are_all_counted() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(t) = TestDb::on_cluster("cp_identical").await else { return };
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let at = ts(1_764_000_000);
    for id in ["a", "b", "c"] {
        let p = post("reddit_saigon", id, "someone", at, at, (10, 10, 44), &["traffic"], &["quan_1"], "v1");
        let r = writer.write(vec![p], &CancellationToken::new()).await.expect("write");
        assert_eq!(r.inserted, 1);
    }
    for table in ["trends_hourly", "trends_daily"] {
        let sql = format!("SELECT toInt64(sum(posts)) FROM DB.{table} WHERE topic = 'traffic' AND place = 'quan_1'");
        assert_eq!(t.scalar::<i64>(&sql).await, 3, "{table}: three posts, three identical blocks");
    }

    let single = store::Database::new(&common::unique_name("cp_single")).expect("db");
    let zone = store::CityZone::new(ZONE).expect("zone");
    store::migrate(&t.client, &single, zone).await.expect("one-server database");
    let err = store::migrate(&t.client, &single.clone().on_cluster(t.db.cluster().unwrap()).unwrap(), zone)
        .await
        .expect_err("a one-server database must not be migrated to a cluster in place");
    assert!(err.to_string().contains("made on one server"), "{err}");
    let err = store::migrate(&t.client, &store::Database::new(t.db.as_str()).unwrap(), zone)
        .await
        .expect_err("a clustered database without clickhouse.cluster");
    assert!(err.to_string().contains("set clickhouse.cluster"), "{err}");
    t.client.query(&format!("DROP DATABASE {single}")).execute().await.expect("drop");
    t.drop_db().await;
}
