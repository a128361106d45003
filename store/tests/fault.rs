//! A dedicated ClickHouse server is killed (SIGKILL) while the writer streams batches into it and is
//! restarted a few seconds later: the writer retries through the outage, every post ends up live
//! exactly once in `posts`, and nothing is written twice.
//!
//! What a SIGKILL can still cost, and this test pins down exactly: ClickHouse writes an INSERT's
//! materialized views after its source table, not atomically with it. A kill that lands after the
//! batch's rows reached `posts` but before the views ran leaves that batch's new posts out of the
//! trend tables, and the writer's retry, finding them stored, cannot tell. So each trend table is
//! either exact or short by exactly the new posts the retry found stored, its cells off by no more
//! than that one batch could move. Seen once in eight runs here; the repair is left open
//! (issue 28's closing note: writer-side idempotent trend rows, or a rebuild of the affected days).
//!
//! Part of every `make test` run (about 15 s: a 6 s outage plus the restart). It starts its own
//! server through scripts/services.sh on free ports (or CITYPULSE_TEST_CH_FAULT_HTTP_PORT and
//! CITYPULSE_TEST_CH_FAULT_TCP_PORT); outage: CITYPULSE_TEST_CH_FAULT_DOWN_S [6].

mod common;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Backoff, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;

struct Instance {
    dir: PathBuf,
    http: String,
    tcp: String,
}

impl Instance {
    fn services(&self, action: &str) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
        let status = Command::new(script)
            .args([action, "clickhouse"])
            .env("CITYPULSE_SERVICES_DIR", &self.dir)
            .env("CITYPULSE_CH_HTTP_PORT", &self.http)
            .env("CITYPULSE_CH_TCP_PORT", &self.tcp)
            .status()
            .expect("run services.sh");
        assert!(status.success(), "services.sh {action} clickhouse failed");
    }

    /// SIGKILL, no shutdown: the server we started, by the pid its own pid file names.
    fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("clickhouse/clickhouse.pid")).expect("pid file");
        let status = Command::new("kill").args(["-9", pid.trim()]).status().expect("kill");
        assert!(status.success());
    }
}

/// The server is stopped however the test ends: a failed assertion must not leave a ClickHouse
/// process running after the suite (seen: one outlived a failed run).
impl Drop for Instance {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
        let _ = Command::new(script)
            .args(["stop", "clickhouse"])
            .env("CITYPULSE_SERVICES_DIR", &self.dir)
            .env("CITYPULSE_CH_HTTP_PORT", &self.http)
            .env("CITYPULSE_CH_TCP_PORT", &self.tcp)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deliveries per write: the most one interrupted INSERT can leave out of the trend tables.
const BATCH: usize = 40;

fn env_or(var: &str, default: impl FnOnce() -> String) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(default)
}

/// A port nobody listens on right now (the OS picks it), so parallel runs never share a server.
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_killed_mid_stream_loses_nothing_and_counts_nothing_twice() {
    // Like every test that needs ClickHouse: skipped only where no ClickHouse is meant to run.
    if common::clickhouse_url().is_none() {
        return;
    }
    let inst = Instance {
        dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ch-fault-{}", std::process::id())),
        http: env_or("CITYPULSE_TEST_CH_FAULT_HTTP_PORT", free_port),
        tcp: env_or("CITYPULSE_TEST_CH_FAULT_TCP_PORT", free_port),
    };
    let down = Duration::from_secs(env_or("CITYPULSE_TEST_CH_FAULT_DOWN_S", || "6".into()).parse().expect("seconds"));
    inst.services("start");
    let t = TestDb::new(&format!("http://127.0.0.1:{}", inst.http), "cp_fault").await;
    let cfg = WriterConfig {
        backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) },
        attempt_timeout: Duration::from_secs(5),
        ..WriterConfig::default()
    };
    let writer = Writer::new(t.client.clone(), t.db.clone(), cfg);
    let (all, latest) = stream(3000, 4242);
    let batches: Vec<Vec<schema::AnalyzedPost>> = all.chunks(BATCH).map(<[_]>::to_vec).collect();
    let total = batches.len();
    let done = Arc::new(AtomicUsize::new(0));
    let task = {
        let (writer, done) = (writer.clone(), done.clone());
        tokio::spawn(async move {
            let mut inserted = 0;
            for b in &batches {
                let r = writer.write(b.to_vec(), &CancellationToken::new()).await.expect("write");
                assert!(r.rejected.is_empty(), "{:?}", r.rejected);
                inserted += r.inserted;
                done.fetch_add(1, Ordering::SeqCst);
            }
            inserted
        })
    };
    while done.load(Ordering::SeqCst) < total / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    inst.kill();
    let killed_at = Instant::now();
    let at_kill = done.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!writer.health().healthy(Duration::from_secs(1)), "the writer notices the outage");
    tokio::time::sleep(down.saturating_sub(killed_at.elapsed())).await;
    inst.services("start");
    let inserted = tokio::time::timeout(Duration::from_secs(180), task).await.expect("writer finished").expect("join");
    eprintln!(
        "killed after batch {at_kill}/{total}, restarted after {:?}, writer done {:?} after the kill",
        down,
        killed_at.elapsed()
    );
    // Not `inserted == latest.len()`: a kill that lands after an insert committed but before its
    // answer arrived makes the retry find those posts stored already, and a correct writer then
    // counts them as duplicates. What must hold is the content: every post live once, exact cells.
    assert!(at_kill < total, "the kill landed mid-stream ({at_kill} of {total} batches written)");
    eprintln!("{inserted} of {} posts counted as inserted by the writer", latest.len());
    // What the retry found stored: the new posts of the batch whose INSERT the kill interrupted.
    let found_stored_on_retry = latest.len() as i64 - inserted as i64;
    for hourly in [true, false] {
        let (actual, expected) = (actual_cells(&t, hourly).await, expected_cells(&latest, hourly));
        // Each post counts once in the cells of all topics and all places (one per bucket, source,
        // sentiment, model); a delivery moves at most one post out of one such cell and into another.
        let totals = |cells: &std::collections::BTreeMap<Cell, (i64, f64)>| -> std::collections::BTreeMap<Cell, i64> {
            cells.iter().filter(|(c, _)| c.1 == "*" && c.2 == "*").map(|(c, (n, _))| (c.clone(), *n)).collect()
        };
        let (have, want) = (totals(&actual), totals(&expected));
        let missing: i64 = want.values().sum::<i64>() - have.values().sum::<i64>();
        let moved: i64 = want
            .keys()
            .chain(have.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|c| (want.get(c).unwrap_or(&0) - have.get(c).unwrap_or(&0)).abs())
            .sum();
        eprintln!("hourly={hourly}: {missing} posts missing from the trend table, cells off by {moved} in all");
        // Short by nothing, or by exactly what the retry found stored: a writer that wrote a batch
        // twice (negative), or lost one it had not written (more), fails here.
        assert!(
            missing == 0 || missing == found_stored_on_retry,
            "hourly={hourly}: {missing} posts missing, the retry found {found_stored_on_retry} stored"
        );
        // And the damage is that one batch's: at most a post out and a post in per delivery of it.
        assert!(moved <= 2 * BATCH as i64, "hourly={hourly}: cells off by {moved}, more than one batch");
        if found_stored_on_retry == 0 {
            // No INSERT was cut after it reached `posts`: nothing may differ at all.
            assert_eq!(actual, expected, "hourly={hourly}");
        }
    }
    let live: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts FINAL WHERE sign = 1").await;
    assert_eq!(live, latest.len() as u64);
    eprintln!("{} deliveries, {} posts: trend cells exact after the outage", all.len(), latest.len());
    t.drop_db().await;
    // `inst` stops the server and removes its folder when dropped, here or on a failed assertion.
}
