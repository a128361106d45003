//! Politeness against a local server: the host quota holds under a 429 storm shared by several
//! streams, Retry-After holds the whole host, 5xx bursts back off exponentially, and a stream that
//! keeps failing is paused. Every test is bounded to a few seconds.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn sources(base: &str, defaults: &str, quota: &str, hashtags: &str) -> String {
    format!(
        r#"
        [defaults]
        {defaults}

        {quota}

        [[mastodon]]
        name = "mastodon_test"
        base_url = "{base}"
        hashtags = [{hashtags}]
        poll_interval_ms = 1000
        require_place = false
        "#
    )
}

/// Runs ingest for `secs` against `server`, returns the request times.
async fn run_for(server: &TestServer, toml: &str, run: Duration) -> Vec<Instant> {
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(toml, &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    tokio::time::sleep(run).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    server.state.request_times()
}

/// The most requests in any window of `window` starting at a request.
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    times.iter().map(|t| times.iter().filter(|u| **u >= *t && **u < *t + window).count()).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_holds_under_a_429_storm_shared_by_three_streams() {
    let server = TestServer::start().await;
    // Every request is refused without a Retry-After: only the quota keeps the crawler polite.
    server.script(std::iter::repeat_n(Scripted::TooMany(None), 10_000));
    let toml = sources(
        &server.base(),
        "backoff_initial_ms = 5\nbackoff_max_ms = 20\npause_after_failures = 1000",
        "[[host_quota]]\nhost = \"127.0.0.1\"\nrequests_per_second = 4\nburst = 2",
        "\"a\", \"b\", \"c\"",
    );
    let times = run_for(&server, &toml, Duration::from_millis(3000)).await;
    let log = server.state.requests();
    // GCRA: at most burst + rate × window in any window.
    let worst = max_in_window(&times, Duration::from_secs(1));
    assert!(worst <= 6, "{worst} requests in one second; quota is 4/s with burst 2");
    assert!(times.len() >= 10, "only {} requests in 3 s: the storm was not exercised", times.len());
    // The quota is shared fairly: each stream gets about a third.
    for tag in ["/tag/a?", "/tag/b?", "/tag/c?"] {
        let n = log.iter().filter(|(_, p)| p.contains(tag)).count();
        assert!(n * 5 >= times.len(), "stream {tag} got {n} of {} requests", times.len());
    }
    println!("429 storm: {} requests in 3 s, at most {worst} in any 1 s window (quota 4/s, burst 2)", times.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_holds_the_host_for_every_stream() {
    let server = TestServer::start().await;
    server.script([Scripted::TooMany(Some("2".into()))]);
    let toml = sources(
        &server.base(),
        "backoff_initial_ms = 10\nbackoff_max_ms = 50",
        "[[host_quota]]\nhost = \"127.0.0.1\"\nrequests_per_second = 50\nburst = 5",
        "\"a\", \"b\"",
    );
    let times = run_for(&server, &toml, Duration::from_millis(3500)).await;
    let refused = times[0];
    // The second stream's first request may have left together with the refused one; after
    // that, nothing reaches the host until Retry-After has passed.
    let early: Vec<Duration> = times
        .iter()
        .map(|t| t.duration_since(refused))
        .filter(|d| *d > Duration::from_millis(50) && *d < Duration::from_millis(1950))
        .collect();
    assert!(early.is_empty(), "requests during Retry-After: {early:?}");
    let after = times.iter().filter(|t| t.duration_since(refused) >= Duration::from_millis(1950)).count();
    assert!(after >= 2, "both streams came back after Retry-After ({after} requests)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_back_off_exponentially_then_pause() {
    let server = TestServer::start().await;
    server.script(std::iter::repeat_n(Scripted::Status(503), 100));
    let toml = sources(
        &server.base(),
        "backoff_initial_ms = 100\nbackoff_max_ms = 1000\npause_after_failures = 4\npause_ms = 1500",
        "[[host_quota]]\nhost = \"127.0.0.1\"\nrequests_per_second = 50\nburst = 5",
        "\"a\"",
    );
    let times = run_for(&server, &toml, Duration::from_millis(2500)).await;
    assert!(times.len() >= 5, "four failures, a pause, then tries again: {times:?}");
    let gaps: Vec<u128> = times.windows(2).map(|w| w[1].duration_since(w[0]).as_millis()).collect();
    // Equal jitter: the n-th wait is in [base/2, base] with base 100, 200, 400 ms; then the pause.
    assert!((45..=160).contains(&gaps[0]), "{gaps:?}");
    assert!((95..=260).contains(&gaps[1]), "{gaps:?}");
    assert!((195..=460).contains(&gaps[2]), "{gaps:?}");
    assert!(gaps[3] >= 1490, "paused for pause_ms: {gaps:?}");
}
