//! `POST /api/v1/intake/{channel}`: a first-party channel pushes a JSON array, NDJSON or CSV of
//! records (by `Content-Type`) with its own bearer token; the answer lists every record's outcome
//! ([`crate::intake::Desk`]). In front of the desk, in this order: the token (wrong, missing, or a
//! channel that does not exist → 401 without detail), the channel's request rate (→ 429 with
//! `Retry-After`), the format (→ 415), the body size (→ 413), a body that cannot be read at all
//! (→ 400), the record count (→ 413). The ledger unreachable → 503 with `Retry-After`: nothing
//! taken. The desk runs in a task of its own, so a client that hangs up mid-request cannot cut a
//! batch between Kafka's acknowledgement and the `intake_seen` write.

use super::auth::{bearer, digest, same_digest};
use crate::intake::{Desk, Outcome, Tally};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::{DefaultDirectRateLimiter, RateLimiter};
use ingest::parse::intake::{read_json_array, Format, ReadRecord, RecordReader};
use ingest::polite::QuotaSpec;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// A channel's token digest and request limiter.
struct Gate {
    token: [u8; 32],
    limiter: DefaultDirectRateLimiter,
}

/// The intake endpoint's state.
pub struct Intake {
    desk: Arc<Desk>,
    gates: HashMap<String, Gate>,
}

pub type IntakeState = Arc<Intake>;

impl Intake {
    pub fn desk(&self) -> Arc<Desk> {
        self.desk.clone()
    }

    /// Reads each channel's token from its environment variable: one unset or empty is an error (a
    /// channel must never be open to anyone because a variable went missing).
    pub fn new(desk: Arc<Desk>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Intake> {
        let mut gates = HashMap::new();
        for c in desk.channels() {
            let token = env(&c.token_env).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                anyhow::anyhow!("intake channel {:?}: environment variable {} is not set", c.name.as_str(), c.token_env)
            })?;
            let quota = QuotaSpec { requests_per_second: c.requests_per_second, burst: c.burst }.quota();
            gates.insert(c.name.to_string(), Gate { token: digest(token.trim()), limiter: RateLimiter::direct(quota) });
        }
        Ok(Intake { desk, gates })
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Whether `headers` carry the gate's token (the analysts' API compares its tokens the same way).
fn authorised(gate: &Gate, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|presented| same_digest(&gate.token, &digest(presented)))
}

/// The handler.
pub async fn push(
    State(intake): State<IntakeState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (Some(gate), Some(config)) = (intake.gates.get(&channel), intake.desk.channel(&channel)) else {
        tracing::info!(channel, "intake refused: no such channel");
        return unauthorized();
    };
    if !authorised(gate, &headers) {
        tracing::info!(channel, "intake refused: no valid token");
        return unauthorized();
    }
    if let Err(not_until) = gate.limiter.check() {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        metrics::counter!("citypulse_intake_throttled_total", "channel" => channel.clone()).increment(1);
        let message = format!("over {} requests per second for this channel", config.requests_per_second);
        return with_retry_after(error(StatusCode::TOO_MANY_REQUESTS, message), wait.as_secs_f64().ceil() as u64);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(format) = Format::from_content_type(content_type) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json (an array), application/x-ndjson or text/csv",
        );
    };
    let max = config.max_body_bytes;
    let too_large = || {
        error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {max} bytes; send fewer records per request"))
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(bytes) => bytes,
        Err(e) if is_length_limit(&e) => return too_large(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "the body could not be read to its end"),
    };
    let records = match read_records(&bytes, format, config.max_records + 1, intake.desk.max_record_bytes()) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if records.len() > config.max_records {
        let message = format!("over {} records; at most {} per request", config.max_records, config.max_records);
        return error(StatusCode::PAYLOAD_TOO_LARGE, message);
    }
    let (desk, name) = (intake.desk.clone(), channel.clone());
    let taken = tokio::spawn(async move { desk.take(&name, records.into_iter().enumerate().collect()).await }).await;
    match taken {
        Ok(Ok(outcomes)) => answer(&channel, &outcomes),
        Err(e) => {
            tracing::error!(channel, error = %e, "the intake task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the intake failed; send again")
        }
        Ok(Err(e)) => {
            tracing::warn!(channel, error = %e, "intake unavailable");
            with_retry_after(
                error(StatusCode::SERVICE_UNAVAILABLE, "the intake is unavailable; nothing was taken, send again"),
                5,
            )
        }
    }
}

/// Whether reading the body failed on its size (a chunked body says so only here).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The body's records, at most `most` of them (a body of millions of one-byte lines stops here).
fn read_records(body: &[u8], format: Format, most: usize, max_record_bytes: usize) -> Result<Vec<ReadRecord>, String> {
    if format == Format::Json {
        return read_json_array(body).map_err(|e| e.to_string());
    }
    let mut reader = RecordReader::new(body, format, max_record_bytes).map_err(|e| e.to_string())?;
    std::iter::from_fn(|| reader.next_record()).take(most).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

fn answer(channel: &str, outcomes: &[Outcome]) -> Response {
    let t = Tally::of(outcomes);
    tracing::info!(channel, accepted = t.accepted, duplicate = t.duplicate, rejected = t.rejected, "intake batch");
    Json(json!({
        "channel": channel,
        "accepted": t.accepted,
        "duplicate": t.duplicate,
        "rejected": t.rejected,
        "records": outcomes,
    }))
    .into_response()
}
