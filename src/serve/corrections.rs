//! Analysts' corrections of the classifier: `POST /api/v1/corrections` marks a stored post's
//! sentiment or topic as wrong and gives the right one, `GET /api/v1/corrections` lists them and
//! `DELETE /api/v1/corrections/{id}` revokes one. Writing needs the `analyst` role; the token's
//! name is who. They train the heads: `citypulse labels export`, then `citypulse train-head`.

use super::api::unavailable;
use super::auth::Caller;
use super::params::{ApiError, Params};
use super::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use store::corrections::{self, Field};

pub const LIST_PARAMS: &[&str] = &["revoked", "limit"];

/// `POST /api/v1/corrections`: the post's key and exactly one of `sentiment` and `topic`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCorrection {
    pub post: String,
    #[serde(default)]
    pub sentiment: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// The field and label asked for, checked against the labels the classifier can give.
fn field_and_label(body: &NewCorrection, topic_ids: &[String]) -> Result<(Field, String), ApiError> {
    match (&body.sentiment, &body.topic) {
        (Some(s), None) => {
            let label = schema::SentimentLabel::parse(s)
                .ok_or_else(|| ApiError::invalid("sentiment", format!("{s:?} is not negative, neutral or positive")))?;
            Ok((Field::Sentiment, label.as_str().to_owned()))
        }
        (None, Some(t)) => {
            if !topic_ids.iter().any(|id| id == t) {
                return Err(ApiError::invalid(
                    "topic",
                    format!("{t:?} is not a topic of topics.toml (GET /api/v1/topics lists them)"),
                ));
            }
            Ok((Field::Topic, t.clone()))
        }
        _ => Err(ApiError::invalid("body", "give exactly one of `sentiment` and `topic`, with the right label")),
    }
}

/// `POST /api/v1/corrections` `{post, sentiment | topic}`: 201 with the correction. 404 for a post
/// that is not stored; 400 when the label is not one the classifier gives, or is what it said.
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<NewCorrection>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !caller.is_analyst() {
        return Err(ApiError::forbidden("correcting the classifier needs a token of the analyst role"));
    }
    let Json(body) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let (field, label) = field_and_label(&body, &s.topic_ids)?;
    let post = corrections::post_labels(&s.client, &s.db, &body.post)
        .await
        .map_err(unavailable("the post"))?
        .ok_or_else(|| ApiError::not_found("unknown_post", format!("no stored post {:?}", body.post)))?;
    if post.label(field) == label {
        return Err(ApiError::invalid(
            field.as_str(),
            format!("the classifier already says {label}; a correction gives the right label"),
        ));
    }
    let c = corrections::record(&s.client, &s.db, &post, field, &label, caller.name(), chrono::Utc::now())
        .await
        .map_err(unavailable("saving the correction"))?;
    tracing::info!(id = %c.id, post = %c.post_key, field = field.as_str(), from = %c.old_label,
        to = %c.new_label, by = caller.name(), "correction saved");
    Ok((StatusCode::CREATED, Json(json!({ "correction": c }))))
}

/// `GET /api/v1/corrections?revoked=exclude|include&limit`: `{corrections, total}`, newest first.
pub async fn list(
    State(s): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(raw, LIST_PARAMS, s.tz)?;
    let include = p.choice("revoked", &["exclude", "include"], "exclude")? == "include";
    let limit = p.limit(50, 1000)? as usize;
    let all = corrections::list(&s.client, &s.db, include).await.map_err(unavailable("the corrections"))?;
    let total = all.len();
    let shown: Vec<_> = all.into_iter().take(limit).collect();
    Ok(Json(json!({ "corrections": shown, "total": total })))
}

/// `DELETE /api/v1/corrections/{id}`: 204; 404 when there is no live correction `id`.
pub async fn revoke(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !caller.is_analyst() {
        return Err(ApiError::forbidden("revoking a correction needs a token of the analyst role"));
    }
    let revoked = corrections::revoke(&s.client, &s.db, &id, caller.name(), chrono::Utc::now())
        .await
        .map_err(unavailable("revoking the correction"))?;
    match revoked {
        Some(c) => {
            tracing::info!(id = %c.id, post = %c.post_key, by = caller.name(), "correction revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found("unknown_correction", format!("no live correction {id:?}"))),
    }
}
