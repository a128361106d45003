//! A dedicated ClickHouse server is killed (SIGKILL) while the writer streams batches into it and is
//! restarted a few seconds later: the writer retries through the outage, and the trend tables end up
//! exactly equal to the sums over each post's latest analysis — nothing lost, nothing counted twice.
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
    let batches: Vec<Vec<schema::AnalyzedPost>> = all.chunks(40).map(<[_]>::to_vec).collect();
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
    for hourly in [true, false] {
        assert_eq!(actual_cells(&t, hourly).await, expected_cells(&latest, hourly), "hourly={hourly}");
    }
    let live: u64 = t.scalar("SELECT toUInt64(count()) FROM DB.posts FINAL WHERE sign = 1").await;
    assert_eq!(live, latest.len() as u64);
    eprintln!("{} deliveries, {} posts: trend cells exact after the outage", all.len(), latest.len());
    t.drop_db().await;
    inst.services("stop");
    let _ = std::fs::remove_dir_all(&inst.dir);
}
