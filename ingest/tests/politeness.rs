//! Politeness against a local server: the host quota holds under a 429 storm shared by several
//! streams, Retry-After holds the whole host, 5xx bursts back off exponentially, and a stream that
//! keeps failing is paused. Each test runs until the server saw what it needs (a few seconds on an
//! idle machine) and asserts only bounds that a slow or busy machine cannot break.

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

/// Runs ingest against `server` until `done` holds for the server's request log (checked every
/// 20 ms; a failure after a minute), then stops it. Waiting on the condition rather than for a fixed
/// time keeps the tests independent of the machine's speed and load.
async fn run_until(server: &TestServer, toml: &str, what: &str, done: impl Fn(&[(Instant, String)]) -> bool) {
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(toml, &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&server.state.requests()) {
        assert!(Instant::now() < deadline, "{what} never happened: {:?}", server.state.requests());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
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
    // Before the limiter exists: it is created with the first request.
    let start = Instant::now();
    run_until(&server, &toml, "16 requests", |log| log.len() >= 16).await;
    let log = server.state.requests();
    let times = server.state.request_times();
    // GCRA: by any instant, at most burst + rate × (time since the start) requests were let out,
    // and a request reaches the server only after it was let out. So the k-th request to arrive
    // comes no earlier than that allows (one cell of slack for rounding). A slow machine only
    // delays arrivals, which cannot break this; a crawler that ignored the quota (backoff 5–20 ms,
    // three streams) would pass 16 requests in well under a second.
    for (k, t) in times.iter().enumerate() {
        let allowed = 2.0 + 4.0 * t.duration_since(start).as_secs_f64() + 1.0;
        assert!((k + 1) as f64 <= allowed, "request {} after {:?}: quota is 4/s with burst 2", k + 1, *t - start);
    }
    // The quota is shared fairly: each stream gets about a third.
    for tag in ["/tag/a?", "/tag/b?", "/tag/c?"] {
        let n = log.iter().filter(|(_, p)| p.contains(tag)).count();
        assert!(n * 5 >= times.len(), "stream {tag} got {n} of {} requests", times.len());
    }
    let worst = max_in_window(&times, Duration::from_secs(1));
    println!("429 storm: {} requests, at most {worst} in any 1 s window (quota 4/s, burst 2)", times.len());
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
    let hold = Duration::from_millis(1950); // Retry-After: 2 (s), less the clock's granularity
    let stream = |path: &str| if path.contains("/tag/a?") { "a" } else { "b" };
    // Both streams came back after the hold.
    let back = |log: &[(Instant, String)]| {
        ["a", "b"].iter().all(|s| log.iter().any(|(t, p)| stream(p) == *s && t.duration_since(log[0].0) >= hold))
    };
    run_until(&server, &toml, "both streams back after Retry-After", back).await;
    let log = server.state.requests();
    // The first request to arrive got the 429. The hold starts when its answer is read, later
    // than its arrival, so nothing may arrive within 2 s of it — except the other stream's first
    // request, which may have left before the answer came back (it cannot know of the hold).
    let (refused, refused_stream) = (log[0].0, stream(&log[0].1));
    let early: Vec<&(Instant, String)> = log[1..].iter().filter(|(t, _)| t.duration_since(refused) < hold).collect();
    let in_flight = |(_, p): &&(Instant, String)| {
        stream(p) != refused_stream && log.iter().find(|(_, q)| stream(q) == stream(p)).map(|(_, q)| q) == Some(p)
    };
    assert!(early.len() <= 1 && early.iter().all(in_flight), "requests during Retry-After: {early:?}");
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
    run_until(&server, &toml, "four failures, a pause, then a retry", |log| log.len() >= 5).await;
    let times = server.state.request_times();
    let gaps: Vec<u128> = times.windows(2).map(|w| w[1].duration_since(w[0]).as_millis()).collect();
    // One stream: each request leaves only after the previous answer plus the wait, so a gap is
    // never shorter than the wait, however busy the machine. Equal jitter: the n-th wait is in
    // [base/2, base] with base 100, 200, 400 ms; then the pause. Only these lower bounds are
    // asserted (load can only lengthen a gap); the exact schedule is unit-tested in
    // polite::backoff. They still tell the backoff grows (a constant 100 ms one fails the third)
    // and that the fourth failure pauses.
    assert!(gaps[0] >= 45, "{gaps:?}");
    assert!(gaps[1] >= 95, "{gaps:?}");
    assert!(gaps[2] >= 195, "{gaps:?}");
    assert!(gaps[3] >= 1490, "paused for pause_ms: {gaps:?}");
}
