//! Delivery of alert events to webhooks.
//!
//! A webhook gets a `POST` of the event's JSON body with headers that let the receiver route,
//! deduplicate and authenticate it:
//!
//! - `Content-Type: application/json`
//! - `X-Citypulse-Event: alert.fired | alert.renotified | alert.resolved`
//! - `X-Citypulse-Delivery: <event id>`, the same on every retry (and after a restart), so a
//!   receiver can drop duplicates: delivery is at least once.
//! - `X-Citypulse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` when a
//!   secret is configured. The timestamp is inside the MAC so a receiver can refuse old replays.
//!
//! Retries follow the usual classification: 2xx is delivered; 408, 429, 5xx and transport
//! errors (refused, reset, timeout) are retried with exponential backoff (429 and 503 honour
//! `Retry-After` in seconds); any other status fails at once, since sending the same body again
//! would get the same answer. Redirects are not followed: a webhook must not be bounced to a
//! host nobody configured (and the signature would go with it).
//!
//! Every attempt is handed to a callback so the caller can record it (one ClickHouse row per
//! attempt). A shutdown token cuts both the attempt in flight and the wait between attempts;
//! the delivery then ends as `retrying` and the caller resumes it with [`Webhook::deliver_from`].

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use sha2::Sha256;
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Header naming the event kind (`alert.fired`, …).
pub const EVENT_HEADER: &str = "X-Citypulse-Event";
/// Header carrying the event id, stable across retries: the receiver's deduplication key.
pub const DELIVERY_HEADER: &str = "X-Citypulse-Delivery";
/// Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256>` when a secret is configured.
pub const SIGNATURE_HEADER: &str = "X-Citypulse-Signature";

/// How much of an error response's body is kept in the attempt's error: enough to read the
/// receiver's complaint, not enough to bloat a ClickHouse row.
const ERROR_BODY_BYTES: usize = 256;

/// The error recorded for an attempt cut short by shutdown.
const SHUTTING_DOWN: &str = "shutting down";

/// The lifecycle step an event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    Fired,
    Renotified,
    Resolved,
}

impl EventName {
    /// The bare name, as stored: `fired`, `renotified`, `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Fired => "fired",
            EventName::Renotified => "renotified",
            EventName::Resolved => "resolved",
        }
    }

    /// The `X-Citypulse-Event` value: namespaced so receivers sharing an endpoint with other
    /// senders can tell our events apart.
    pub fn header_value(self) -> &'static str {
        match self {
            EventName::Fired => "alert.fired",
            EventName::Renotified => "alert.renotified",
            EventName::Resolved => "alert.resolved",
        }
    }
}

/// One event to deliver. The body is sent byte for byte, because the signature is over these
/// exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable id of the event, sent as `X-Citypulse-Delivery`.
    pub event_id: String,
    pub event: EventName,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// Where an attempt left the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Not delivered yet; another attempt follows (or, after a shutdown, is owed).
    Retrying,
    /// Given up: a permanent refusal, or the attempts are used up.
    Failed,
}

impl Outcome {
    /// The stored name: `delivered`, `retrying`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
        }
    }
}

/// The record of one attempt, as the caller stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based, counted across restarts (see [`Webhook::deliver_from`]).
    pub attempt: u32,
    pub outcome: Outcome,
    /// The receiver's status, if it answered at all.
    pub http_status: Option<u16>,
    /// Why it was not delivered: transport error, timeout, the status and the start of the
    /// body, or "shutting down".
    pub error: Option<String>,
    /// When the attempt started (also the `t` it was signed with).
    pub at: DateTime<Utc>,
}

impl Attempt {
    /// The attempt number to resume from, when this attempt leaves the delivery unfinished
    /// (`retrying`, which a returned attempt only is after a shutdown).
    pub fn resume_from(&self) -> Option<u32> {
        (self.outcome == Outcome::Retrying).then_some(self.attempt.saturating_add(1))
    }
}

/// How hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first, and including those made before a restart.
    /// Default 5.
    pub max_attempts: u32,
    /// Bound on one attempt (connect, send, status and the start of an error body), so a
    /// hanging receiver cannot hold the delivery. Default 10 s.
    pub timeout: Duration,
    /// Wait after the first failed attempt; doubled after each further one. Default 1 s.
    pub backoff_base: Duration,
    /// Longest wait between two attempts, for the backoff and for a receiver's `Retry-After`
    /// alike. Default 60 s.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): the receiver's `Retry-After` when it
    /// gave one, else `backoff_base · 2^(attempt-1)`; both capped by `backoff_max` so neither a
    /// long delivery nor a hostile header can park the notifier.
    pub fn wait_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = || self.backoff_base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or_else(backoff).min(self.backoff_max)
    }
}

/// `t=<t>,v1=<lowercase hex of HMAC-SHA256(secret, "<t>.<body>")>`.
///
/// The receiver recomputes it over the raw body it received (before any JSON parsing, which
/// could reorder or reformat) and compares in constant time.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A configured webhook notifier.
pub struct Webhook {
    name: String,
    url: Url,
    secret: Option<Vec<u8>>,
    policy: RetryPolicy,
    client: reqwest::Client,
}

/// Shows the name and origin only: webhook URLs often carry a token in their path (Slack's do),
/// and the secret is a secret.
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("origin", &self.url.origin().ascii_serialization())
            .field("signed", &self.secret.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Webhook {
    /// A webhook posting to `url`, signing with `secret` if given.
    ///
    /// # Panics
    /// If the HTTP client cannot be built, which only happens when the TLS backend cannot
    /// initialise: a broken installation, found at start-up where notifiers are built.
    pub fn new(name: &str, url: Url, secret: Option<Vec<u8>>, policy: RetryPolicy) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("citypulse/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds (TLS backend available)");
        Webhook { name: name.to_owned(), url, secret, policy, client }
    }

    /// The notifier's name, as recorded with each attempt.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Delivers one event from its first attempt; see [`Webhook::deliver_from`].
    pub async fn deliver(
        &self,
        d: &Delivery,
        shutdown: &CancellationToken,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Attempt {
        self.deliver_from(d, 1, shutdown, on_attempt).await
    }

    /// Delivers one event, numbering attempts from `first_attempt` so a delivery resumed after
    /// a restart keeps counting: attempts already made count toward `max_attempts`. At least
    /// one attempt is always made, because a delivery is only resumed when its last attempt was
    /// cut short by a shutdown and so never got its answer.
    ///
    /// `on_attempt` sees every attempt as it ends. Returns the last one: `delivered`, `failed`,
    /// or — only when `shutdown` fired — `retrying`, meaning resume from
    /// [`Attempt::resume_from`].
    pub async fn deliver_from(
        &self,
        d: &Delivery,
        first_attempt: u32,
        shutdown: &CancellationToken,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Attempt {
        let once = move |at: DateTime<Utc>| async move { self.exchange(d, at).await.into_tried() };
        attempt_loop(&self.policy, first_attempt, shutdown, on_attempt, once, |a| self.report(d, a)).await
    }

    /// One POST, bounded by the policy's timeout (which also bounds reading an error body).
    async fn exchange(&self, d: &Delivery, at: DateTime<Utc>) -> Exchange {
        let deadline = tokio::time::Instant::now() + self.policy.timeout;
        let response = match tokio::time::timeout_at(deadline, self.request(d, at.timestamp()).send()).await {
            Err(_) => return Exchange::Transport(format!("timed out after {:?}", self.policy.timeout)),
            // Builder errors (say, an event id that is no valid header value) would recur.
            Ok(Err(e)) if e.is_builder() => return Exchange::Unsendable(error_chain(&e.without_url())),
            Ok(Err(e)) => return Exchange::Transport(error_chain(&e.without_url())),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let retry_after = retry_after(status, response.headers());
        let error = if status.is_success() {
            None
        } else {
            // A body that does not come in time must not cost us the status we already have.
            let body = tokio::time::timeout_at(deadline, body_start(response)).await.unwrap_or_default();
            Some(status_error(status, &body))
        };
        Exchange::Answered { status: status.as_u16(), retry_after, error }
    }

    /// The signed POST for one attempt; `t` is that attempt's time, so each retry is signed
    /// afresh and a receiver's replay window holds for retries too.
    fn request(&self, d: &Delivery, t: i64) -> reqwest::RequestBuilder {
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, d.event.header_value())
            .header(DELIVERY_HEADER, d.event_id.as_str())
            .body(d.body.clone());
        match &self.secret {
            Some(secret) => request.header(SIGNATURE_HEADER, signature(secret, t, &d.body)),
            None => request,
        }
    }

    /// Logs and counts an attempt. The URL is never logged (it may hold a token).
    fn report(&self, d: &Delivery, a: &Attempt) {
        metrics::counter!(
            "citypulse_alert_webhook_attempts_total",
            "notifier" => self.name.clone(),
            "outcome" => a.outcome.as_str()
        )
        .increment(1);
        let (notifier, event_id, attempt, status) = (&self.name, &d.event_id, a.attempt, a.http_status);
        let error = a.error.as_deref().unwrap_or("");
        match a.outcome {
            Outcome::Delivered => tracing::debug!(notifier, event_id, attempt, ?status, "webhook delivered"),
            Outcome::Retrying => tracing::info!(notifier, event_id, attempt, ?status, error, "webhook will retry"),
            Outcome::Failed => tracing::warn!(notifier, event_id, attempt, ?status, error, "webhook failed"),
        }
    }
}

/// What one HTTP exchange came to, before the retry policy has its say.
enum Exchange {
    /// The receiver answered (any status: redirects are not followed).
    Answered { status: u16, retry_after: Option<Duration>, error: Option<String> },
    /// No answer: refused, reset, DNS, timeout. The next attempt may fare better.
    Transport(String),
    /// The request could not be built; it never would be.
    Unsendable(String),
}

/// The retry classification of an exchange (any channel's).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Delivered,
    Retry { retry_after: Option<Duration> },
    Fail,
    Interrupted,
}

impl Exchange {
    fn verdict(&self) -> Verdict {
        match self {
            Exchange::Answered { status, retry_after, .. } => status_verdict(*status, *retry_after),
            Exchange::Transport(_) => Verdict::Retry { retry_after: None },
            Exchange::Unsendable(_) => Verdict::Fail,
        }
    }

    fn into_tried(self) -> Tried {
        let verdict = self.verdict();
        let (code, error) = match self {
            Exchange::Answered { status, error, .. } => (Some(status), error),
            Exchange::Transport(e) | Exchange::Unsendable(e) => (None, Some(e)),
        };
        Tried { verdict, code, error }
    }
}

/// One attempt on any channel: its classification, the receiver's code (HTTP status, SMTP
/// reply) and why it did not go through.
pub(crate) struct Tried {
    pub verdict: Verdict,
    pub code: Option<u16>,
    pub error: Option<String>,
}

/// The outcome of attempt `n` and, if another follows, the wait before it.
fn decide(policy: &RetryPolicy, n: u32, verdict: &Verdict) -> (Outcome, Option<Duration>) {
    match *verdict {
        Verdict::Delivered => (Outcome::Delivered, None),
        Verdict::Fail => (Outcome::Failed, None),
        // Cut short by us, not refused by the receiver: owed another attempt after restart.
        Verdict::Interrupted => (Outcome::Retrying, None),
        Verdict::Retry { .. } if n >= policy.max_attempts => (Outcome::Failed, None),
        Verdict::Retry { retry_after } => (Outcome::Retrying, Some(policy.wait_after(n, retry_after))),
    }
}

/// The attempt loop every channel shares: `once` makes one attempt (it is handed its start
/// time); the policy decides whether and when another follows. Attempts are numbered from
/// `first_attempt`, so a delivery resumed after a restart keeps counting; `report` and
/// `on_attempt` see each as it ends. A shutdown cuts both the attempt in flight (it is dropped and
/// ends `retrying`, owed after a restart) and the wait between attempts.
pub(crate) async fn attempt_loop<F, Fut>(
    policy: &RetryPolicy,
    first_attempt: u32,
    shutdown: &CancellationToken,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    once: F,
    report: impl Fn(&Attempt),
) -> Attempt
where
    F: Fn(DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = Tried>,
{
    let mut n = first_attempt.max(1);
    loop {
        let at = Utc::now();
        let interrupted = || Tried { verdict: Verdict::Interrupted, code: None, error: Some(SHUTTING_DOWN.to_owned()) };
        let Tried { verdict, code, error } = tokio::select! {
            tried = once(at) => tried,
            () = shutdown.cancelled() => interrupted(),
        };
        let (outcome, wait) = decide(policy, n, &verdict);
        let attempt = Attempt { attempt: n, outcome, http_status: code, error, at };
        report(&attempt);
        on_attempt(&attempt);
        let Some(wait) = wait else { return attempt };
        // Waiting is where a shutdown would otherwise be held up: give in at once.
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return attempt,
        }
        n = n.saturating_add(1);
    }
}

/// 2xx delivered; 408, 429 and 5xx are the receiver's passing trouble; anything else (4xx,
/// an unfollowed 3xx) would be answered the same way again.
fn status_verdict(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry { retry_after },
        _ => Verdict::Fail,
    }
}

/// `Retry-After` in seconds, on the statuses where it means "come back then" (429, 503).
/// The HTTP-date form is ignored: the backoff applies instead.
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The first [`ERROR_BODY_BYTES`] of a response body, as text.
async fn body_start(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ERROR_BODY_BYTES);
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// `HTTP 503 Service Unavailable: <body start>`, saying so when a redirect was refused, since
/// that is a configuration mistake to fix, not the receiver's complaint.
fn status_error(status: StatusCode, body: &str) -> String {
    let mut error = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        error.push(' ');
        error.push_str(reason);
    }
    if status.is_redirection() {
        error.push_str(" (redirects are not followed)");
    }
    if !body.is_empty() {
        error.push_str(": ");
        error.push_str(body);
    }
    error
}

/// An error with its causes, `a: b: c`: reqwest's own message alone ("error sending request")
/// does not say whether the connection was refused or reset.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_computation() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'secret', b'1700000000.{\"a\":1}',
        //   hashlib.sha256).hexdigest())"  (and `openssl dgst -sha256 -hmac secret` agrees)
        assert_eq!(
            signature(b"secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn statuses_are_classified() {
        let ra = Some(Duration::from_secs(2));
        assert_eq!(status_verdict(200, None), Verdict::Delivered);
        assert_eq!(status_verdict(204, None), Verdict::Delivered);
        assert_eq!(status_verdict(408, None), Verdict::Retry { retry_after: None });
        assert_eq!(status_verdict(429, ra), Verdict::Retry { retry_after: ra });
        assert_eq!(status_verdict(500, None), Verdict::Retry { retry_after: None });
        assert_eq!(status_verdict(503, ra), Verdict::Retry { retry_after: ra });
        for permanent in [301, 307, 400, 401, 403, 404, 410, 422] {
            assert_eq!(status_verdict(permanent, None), Verdict::Fail, "{permanent}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let waits: Vec<_> = (1..=6).map(|n| p.wait_after(n, None).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.wait_after(u32::MAX, None), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let p = RetryPolicy { backoff_max: Duration::from_secs(30), ..RetryPolicy::default() };
        assert_eq!(p.wait_after(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(p.wait_after(1, Some(Duration::from_secs(3600))), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_is_read_in_seconds_on_429_and_503_only() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, " 5 ".parse().unwrap());
        assert_eq!(retry_after(StatusCode::TOO_MANY_REQUESTS, &h), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(StatusCode::SERVICE_UNAVAILABLE, &h), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(StatusCode::INTERNAL_SERVER_ERROR, &h), None);
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(StatusCode::TOO_MANY_REQUESTS, &h), None);
    }

    #[test]
    fn attempts_run_out_into_failure() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let busy = Exchange::Answered { status: 503, retry_after: None, error: None }.verdict();
        assert_eq!(decide(&policy, 2, &busy), (Outcome::Retrying, Some(Duration::from_secs(2))));
        assert_eq!(decide(&policy, 3, &busy), (Outcome::Failed, None));
        assert_eq!(decide(&policy, 7, &busy), (Outcome::Failed, None));
        assert_eq!(decide(&policy, 3, &Verdict::Interrupted), (Outcome::Retrying, None));
        assert_eq!(decide(&policy, 1, &Exchange::Unsendable("x".into()).verdict()), (Outcome::Failed, None));
    }

    #[test]
    fn status_errors_read_well() {
        assert_eq!(status_error(StatusCode::BAD_REQUEST, "no such channel"), "HTTP 400 Bad Request: no such channel");
        assert_eq!(
            status_error(StatusCode::TEMPORARY_REDIRECT, ""),
            "HTTP 307 Temporary Redirect (redirects are not followed)"
        );
    }

    #[test]
    fn debug_hides_url_path_and_secret() {
        let hook = Webhook::new(
            "slack",
            Url::parse("https://hooks.example.com/services/T0/B0/tok3n").unwrap(),
            Some(b"s3cret".to_vec()),
            RetryPolicy::default(),
        );
        let shown = format!("{hook:?}");
        assert!(shown.contains("https://hooks.example.com"), "{shown}");
        assert!(!shown.contains("tok3n") && !shown.contains("s3cret") && !shown.contains("115, 51"), "{shown}");
    }
}
