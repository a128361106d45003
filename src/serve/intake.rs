//! `POST /api/v1/intake/{channel}`: a first-party channel pushes a JSON array, NDJSON or CSV of
//! records (by `Content-Type`) with its own bearer token; the answer lists every record's outcome
//! ([`crate::intake::Desk`]). In front of the desk, in this order: the token (wrong, missing, or a
//! channel that does not exist → 401 without detail), the channel's request rate (→ 429 with
//! `Retry-After`), the format (→ 415), the body size and the record count (→ 413), a body that
//! cannot be read at all (→ 400). The ledger unreachable → 503 with `Retry-After`: nothing taken.

use crate::intake::{Desk, Outcome, Tally};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ingest::parse::intake::{read_json_array, Format, ReadRecord, RecordReader};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroU32;
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
    /// Reads each channel's token from its environment variable: one unset or empty is an error (a
    /// channel must never be open to anyone because a variable went missing).
    pub fn new(desk: Arc<Desk>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Intake> {
        let mut gates = HashMap::new();
        for c in desk.channels() {
            let token = env(&c.token_env).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                anyhow::anyhow!("intake channel {:?}: environment variable {} is not set", c.name.as_str(), c.token_env)
            })?;
            let per_second = c.requests_per_second.max(0.001);
            let period = std::time::Duration::from_secs_f64(1.0 / per_second);
            let burst = NonZeroU32::new(c.burst.max(1)).expect("at least 1");
            let quota = Quota::with_period(period).expect("a positive period").allow_burst(burst);
            gates.insert(
                c.name.to_string(),
                Gate { token: Sha256::digest(token.trim().as_bytes()).into(), limiter: RateLimiter::direct(quota) },
            );
        }
        Ok(Intake { desk, gates })
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Whether `headers` carry the gate's token, compared without an early exit.
fn authorised(gate: &Gate, headers: &HeaderMap) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    gate.token.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
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
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !authorised(gate, &headers) {
        tracing::info!(channel, "intake refused: no valid token");
        return StatusCode::UNAUTHORIZED.into_response();
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
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        return too_large();
    };
    let records = match read_records(&bytes, format) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if records.len() > config.max_records {
        let message = format!("{} records; at most {} per request", records.len(), config.max_records);
        return error(StatusCode::PAYLOAD_TOO_LARGE, message);
    }
    match intake.desk.take(&channel, records.into_iter().enumerate().collect()).await {
        Ok(outcomes) => answer(&channel, &outcomes),
        Err(e) => {
            tracing::warn!(channel, error = %e, "intake unavailable");
            with_retry_after(
                error(StatusCode::SERVICE_UNAVAILABLE, "the intake is unavailable; nothing was taken, send again"),
                5,
            )
        }
    }
}

fn read_records(body: &[u8], format: Format) -> Result<Vec<ReadRecord>, String> {
    if format == Format::Json {
        return read_json_array(body).map_err(|e| e.to_string());
    }
    let mut reader = RecordReader::new(body, format).map_err(|e| e.to_string())?;
    std::iter::from_fn(|| reader.next_record()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
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
