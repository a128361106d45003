//! `GET /api/v1/emerging?date` (the day's latest saved emerging-issues report) and
//! `POST /api/v1/emerging/proposals` (`analyst` role; open like the rest of the API when no
//! `[[serve.token]]` is configured, as in the demo): writes a reported group's proposed
//! `[[topic]]` block to `emerging.proposals_dir` for a person to review, and returns it.

use super::auth::Caller;
use super::params::{ApiError, Params};
use super::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub const EMERGING_PARAMS: &[&str] = &["date"];

fn date_of(p: &Params, tz: chrono_tz::Tz) -> Result<chrono::NaiveDate, ApiError> {
    match p.str("date") {
        None => Ok(chrono::Utc::now().with_timezone(&tz).date_naive()),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::invalid("date", format!("{d:?} is not a date (YYYY-MM-DD)"))),
    }
}

fn not_computed(date: chrono::NaiveDate) -> ApiError {
    ApiError::not_found(
        "not_computed",
        format!(
            "no emerging-issues report for {date} yet: the emerging stage computes today's every \
             emerging.every_minutes, or run `citypulse emerging --date {date}`"
        ),
    )
}

async fn report(s: &AppState, date: chrono::NaiveDate) -> Result<::emerging::Report, ApiError> {
    match s.emerging.latest(date).await {
        Ok(Some(report)) => Ok(report),
        Ok(None) => Err(not_computed(date)),
        Err(e) => {
            tracing::warn!(error = %e, "reading the emerging-issues report failed");
            Err(ApiError::internal("the emerging-issues report"))
        }
    }
}

/// `GET /api/v1/emerging?date=YYYY-MM-DD` (default today): `{"date", "report"}`, the report
/// `null` with a `message` when none is saved for the day yet (a normal state, not an error: today
/// before the stage's first run, or a day before the city started).
pub async fn latest(
    State(s): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(raw, EMERGING_PARAMS, s.tz)?;
    let date = date_of(&p, s.tz)?;
    match report(&s, date).await {
        Ok(report) => Ok(Json(json!({ "date": date.to_string(), "report": report }))),
        Err(e) if e.code == "not_computed" => {
            Ok(Json(json!({ "date": date.to_string(), "report": null, "message": e.message })))
        }
        Err(e) => Err(e),
    }
}

/// The body of a proposal request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalRequest {
    /// The report's day, YYYY-MM-DD.
    pub date: String,
    /// The group's rank in that report.
    pub rank: u32,
    /// The `computed_at` of the report the caller saw: today's report is recomputed every hour and
    /// ranks move, so a newer one answers 409 instead of proposing another group. Optional.
    #[serde(default)]
    pub computed_at: Option<String>,
}

/// `POST /api/v1/emerging/proposals` `{"date": "YYYY-MM-DD", "rank": N}`.
pub async fn propose(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<ProposalRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !caller.is_analyst() {
        return Err(ApiError::forbidden("proposing a topic needs a token of the analyst role"));
    }
    let Json(req) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let date = chrono::NaiveDate::parse_from_str(&req.date, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid("date", format!("{:?} is not a date (YYYY-MM-DD)", req.date)))?;
    let report = report(&s, date).await?;
    if req.computed_at.as_ref().is_some_and(|seen| *seen != report.computed_at) {
        return Err(ApiError::conflict(format!(
            "the report of {date} was computed again at {}; reload it and choose the group again",
            report.computed_at
        )));
    }
    let group = report.groups.iter().find(|g| g.rank == req.rank).ok_or_else(|| {
        ApiError::invalid("rank", format!("the report of {date} has {} reported group(s)", report.groups.len()))
    })?;
    let path = ::emerging::proposal::write(&s.proposals_dir, date, group).map_err(|e| {
        tracing::warn!(error = %e, dir = %s.proposals_dir.display(), "writing a proposed topic failed");
        ApiError::internal("writing the proposal")
    })?;
    tracing::info!(path = %path.display(), date = %date, rank = req.rank, "proposed topic written");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "path": path.display().to_string(),
            "topic_id": ::emerging::proposal::topic_id(group),
            "block": ::emerging::proposal::topic_block(&report.date, group),
        })),
    ))
}
