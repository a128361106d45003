//! Webhook delivery against real receivers on 127.0.0.1: signatures verify over the raw body,
//! retries keep the delivery id, permanent refusals stop at once, `Retry-After` is honoured,
//! a hanging receiver is bounded and holds up no one else, shutdown cuts the backoff.

use alert::deliver::{Attempt, Delivery, EventName, Outcome, RetryPolicy, Webhook};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the receiver answers to one request.
#[derive(Clone)]
enum Reply {
    Status(u16),
    RetryAfter(u16, &'static str),
    Redirect(String),
    /// Never answers.
    Hang,
}

/// One request as the receiver saw it.
struct Seen {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

/// A scripted receiver: answers with the script in order, then 200; records every request.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    async fn start(script: &[Reply]) -> (Receiver, url::Url) {
        let receiver =
            Receiver { script: Arc::new(Mutex::new(script.iter().cloned().collect())), ..Default::default() };
        let app = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url::Url::parse(&format!("http://{addr}/hook")).unwrap())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    r.seen.lock().unwrap().push(Seen { headers, body, at: Instant::now() });
    let reply = r.script.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
    match reply {
        Reply::Status(s) => (StatusCode::from_u16(s).unwrap(), "receiver says so").into_response(),
        Reply::RetryAfter(s, after) => (StatusCode::from_u16(s).unwrap(), [("retry-after", after)]).into_response(),
        Reply::Redirect(to) => (StatusCode::TEMPORARY_REDIRECT, [("location", to.as_str())]).into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

fn policy(max_attempts: u32, timeout_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        timeout: Duration::from_millis(timeout_ms),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(5),
    }
}

fn delivery(id: &str) -> Delivery {
    Delivery { event_id: id.to_owned(), event: EventName::Fired, body: br#"{"alert":"noise","value":3.5}"#.to_vec() }
}

/// Delivers `d`, returning the last attempt and every attempt reported.
async fn deliver(hook: &Webhook, d: &Delivery, shutdown: &CancellationToken) -> (Attempt, Vec<Attempt>) {
    let mut seen = Vec::new();
    let last = hook.deliver(d, shutdown, &mut |a: &Attempt| seen.push(a.clone())).await;
    (last, seen)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).unwrap_or_else(|| panic!("missing {name}")).to_str().unwrap()
}

fn outcomes(attempts: &[Attempt]) -> Vec<(u32, Outcome)> {
    attempts.iter().map(|a| (a.attempt, a.outcome)).collect()
}

/// Verifies `t=..,v1=..` as a receiver would: HMAC over "<t>.<raw body>", constant-time compare.
fn verify(secret: &[u8], header: &str, body: &[u8]) -> i64 {
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap()).expect("signature verifies");
    assert_eq!(v1, v1.to_lowercase());
    t.parse().unwrap()
}

#[tokio::test]
async fn signed_delivery_verifies_at_the_receiver() {
    let (rx, url) = Receiver::start(&[]).await;
    let hook = Webhook::new("ops", url, Some(b"topsecret".to_vec()), policy(5, 5000));
    let d = delivery("ev-1");
    let (last, attempts) = deliver(&hook, &d, &CancellationToken::new()).await;

    assert_eq!(outcomes(&attempts), [(1, Outcome::Delivered)]);
    assert_eq!((last.http_status, last.error), (Some(200), None));
    let seen = rx.seen();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    assert_eq!(&seen[0].body[..], &d.body[..], "the body goes byte for byte");
    assert_eq!(header(h, "content-type"), "application/json");
    assert_eq!(header(h, "x-citypulse-event"), "alert.fired");
    assert_eq!(header(h, "x-citypulse-delivery"), "ev-1");
    let t = verify(b"topsecret", header(h, "x-citypulse-signature"), &seen[0].body);
    assert!((t - chrono::Utc::now().timestamp()).abs() < 60, "t is the attempt's time");
    assert_eq!(t, last.at.timestamp());
}

#[tokio::test]
async fn unsigned_webhook_sends_no_signature() {
    let (rx, url) = Receiver::start(&[]).await;
    let hook = Webhook::new("ops", url, None, policy(5, 5000));
    let d = Delivery { event: EventName::Resolved, ..delivery("ev-u") };
    let (last, _) = deliver(&hook, &d, &CancellationToken::new()).await;
    assert_eq!(last.outcome, Outcome::Delivered);
    let seen = rx.seen();
    assert!(seen[0].headers.get("x-citypulse-signature").is_none());
    assert_eq!(header(&seen[0].headers, "x-citypulse-event"), "alert.resolved");
}

#[tokio::test]
async fn server_errors_are_retried_under_the_same_delivery_id() {
    let (rx, url) = Receiver::start(&[Reply::Status(500), Reply::Status(503)]).await;
    let hook = Webhook::new("ops", url, Some(b"k".to_vec()), policy(5, 5000));
    let (last, attempts) = deliver(&hook, &delivery("ev-2"), &CancellationToken::new()).await;

    assert_eq!(outcomes(&attempts), [(1, Outcome::Retrying), (2, Outcome::Retrying), (3, Outcome::Delivered)]);
    assert_eq!(attempts.iter().map(|a| a.http_status).collect::<Vec<_>>(), [Some(500), Some(503), Some(200)]);
    assert!(attempts[0].error.as_deref().unwrap().starts_with("HTTP 500 Internal Server Error"), "{attempts:?}");
    assert_eq!(last, attempts[2]);
    let seen = rx.seen();
    assert_eq!(seen.len(), 3);
    for s in seen.iter() {
        assert_eq!(header(&s.headers, "x-citypulse-delivery"), "ev-2");
        verify(b"k", header(&s.headers, "x-citypulse-signature"), &s.body);
    }
}

#[tokio::test]
async fn client_errors_fail_at_once() {
    let (rx, url) = Receiver::start(&[Reply::Status(400)]).await;
    let hook = Webhook::new("ops", url, None, policy(5, 5000));
    let (last, attempts) = deliver(&hook, &delivery("ev-3"), &CancellationToken::new()).await;

    assert_eq!(outcomes(&attempts), [(1, Outcome::Failed)]);
    assert_eq!(last.http_status, Some(400));
    assert_eq!(last.error.as_deref(), Some("HTTP 400 Bad Request: receiver says so"));
    assert_eq!(rx.seen().len(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (elsewhere, elsewhere_url) = Receiver::start(&[]).await;
    let (rx, url) = Receiver::start(&[Reply::Redirect(elsewhere_url.to_string())]).await;
    let hook = Webhook::new("ops", url, Some(b"k".to_vec()), policy(5, 5000));
    let (last, attempts) = deliver(&hook, &delivery("ev-r"), &CancellationToken::new()).await;

    assert_eq!(outcomes(&attempts), [(1, Outcome::Failed)]);
    assert_eq!(last.http_status, Some(307));
    assert!(last.error.unwrap().contains("redirects are not followed"));
    assert_eq!((rx.seen().len(), elsewhere.seen().len()), (1, 0));
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (rx, url) = Receiver::start(&[Reply::RetryAfter(429, "1")]).await;
    // The backoff alone would wait 50 ms; Retry-After asks for a second.
    let hook = Webhook::new("ops", url, None, policy(5, 5000));
    let (last, attempts) = deliver(&hook, &delivery("ev-4"), &CancellationToken::new()).await;

    assert_eq!(outcomes(&attempts), [(1, Outcome::Retrying), (2, Outcome::Delivered)]);
    assert_eq!(attempts[0].http_status, Some(429));
    assert_eq!(last.outcome, Outcome::Delivered);
    let seen = rx.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(900), "the receiver saw the second attempt after {gap:?}");
}

#[tokio::test]
async fn refused_connections_are_retried_until_attempts_run_out() {
    // A port that was just free: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let hook = Webhook::new("ops", url, None, policy(3, 2000));
    let (last, attempts) = deliver(&hook, &delivery("ev-c"), &CancellationToken::new()).await;

    assert_eq!(outcomes(&attempts), [(1, Outcome::Retrying), (2, Outcome::Retrying), (3, Outcome::Failed)]);
    assert_eq!(last.http_status, None);
    let error = last.error.unwrap();
    assert!(error.contains("error sending request") && !error.contains("/hook"), "{error}");
}

#[tokio::test]
async fn hanging_receiver_is_bounded_and_holds_up_no_one() {
    let (_hang_rx, hang_url) = Receiver::start(&[Reply::Hang, Reply::Hang]).await;
    let (good_rx, good_url) = Receiver::start(&[]).await;
    let hanging = Webhook::new("hanging", hang_url, None, policy(2, 300));
    let good = Webhook::new("good", good_url, None, policy(2, 5000));
    let log = Mutex::new(Vec::new());
    let log_ref = &log;
    let record = |name: &'static str| move |a: &Attempt| log_ref.lock().unwrap().push((name, a.attempt, a.outcome));
    let (mut on_hanging, mut on_good) = (record("hanging"), record("good"));
    let shutdown = CancellationToken::new();
    let (to_hanging, to_good) = (delivery("ev-h"), delivery("ev-g"));

    let both = async {
        tokio::join!(
            hanging.deliver(&to_hanging, &shutdown, &mut on_hanging),
            good.deliver(&to_good, &shutdown, &mut on_good),
        )
    };
    // Only a regression (no per-attempt bound) could come near this; it fails instead of hanging.
    let (hung, delivered) = tokio::time::timeout(Duration::from_secs(20), both).await.expect("bounded");

    assert_eq!((hung.attempt, hung.outcome, hung.http_status), (2, Outcome::Failed, None));
    assert!(hung.error.as_deref().unwrap().contains("timed out"), "{hung:?}");
    assert_eq!(delivered.outcome, Outcome::Delivered);
    assert_eq!(good_rx.seen().len(), 1);
    // The good delivery finished before the hanging one had even given up its first attempt.
    let log = log.into_inner().unwrap();
    assert_eq!(
        log,
        [("good", 1, Outcome::Delivered), ("hanging", 1, Outcome::Retrying), ("hanging", 2, Outcome::Failed)]
    );
}

#[tokio::test]
async fn shutdown_cuts_the_backoff() {
    let (rx, url) = Receiver::start(&[Reply::Status(500), Reply::Status(500)]).await;
    // A backoff long enough that only the shutdown can explain a prompt return.
    let slow =
        RetryPolicy { backoff_base: Duration::from_secs(30), backoff_max: Duration::from_secs(60), ..policy(5, 5000) };
    let hook = Webhook::new("ops", url, None, slow);
    let shutdown = CancellationToken::new();
    let mut attempts = Vec::new();
    let mut on_attempt = |a: &Attempt| {
        attempts.push(a.clone());
        shutdown.cancel(); // as if SIGTERM arrived during the wait that follows
    };
    let d = delivery("ev-6");
    let last = tokio::time::timeout(Duration::from_secs(10), hook.deliver(&d, &shutdown, &mut on_attempt))
        .await
        .expect("deliver returns promptly on shutdown");

    assert_eq!(outcomes(&attempts), [(1, Outcome::Retrying)]);
    assert_eq!((last.attempt, last.outcome, last.http_status), (1, Outcome::Retrying, Some(500)));
    assert_eq!(last.resume_from(), Some(2));
    assert_eq!(rx.seen().len(), 1);
}

#[tokio::test]
async fn shutdown_cuts_the_attempt_in_flight() {
    let (rx, url) = Receiver::start(&[Reply::Hang]).await;
    let hook = Webhook::new("ops", url, None, policy(5, 30_000));
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    let d = delivery("ev-7");
    let (last, _) = tokio::join!(
        async { tokio::time::timeout(Duration::from_secs(10), deliver(&hook, &d, &shutdown)).await.expect("prompt") },
        async {
            // Cancel once the request is at the receiver, hanging.
            while rx.seen().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            cancel.cancel();
        },
    );
    let (last, attempts) = last;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0], last);
    assert_eq!((last.attempt, last.outcome, last.http_status), (1, Outcome::Retrying, None));
    assert_eq!(last.error.as_deref(), Some("shutting down"));
}

#[tokio::test]
async fn resumed_delivery_keeps_counting_toward_max_attempts() {
    let (rx, url) = Receiver::start(&[Reply::Status(502), Reply::Status(502), Reply::Status(502)]).await;
    let hook = Webhook::new("ops", url, None, policy(5, 5000));
    let mut attempts = Vec::new();
    let last = hook
        .deliver_from(&delivery("ev-8"), 4, &CancellationToken::new(), &mut |a: &Attempt| attempts.push(a.clone()))
        .await;

    assert_eq!(outcomes(&attempts), [(4, Outcome::Retrying), (5, Outcome::Failed)]);
    assert_eq!((last.http_status, last.resume_from()), (Some(502), None));
    assert_eq!(rx.seen().len(), 2);
}
