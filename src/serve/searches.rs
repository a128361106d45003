//! Saved searches as series: `GET /api/v1/searches` (every saved search, from searches.toml and
//! from the API), `POST /api/v1/searches` and `DELETE /api/v1/searches/{name}` (`analyst` role;
//! `saved_by` is the token's name), `GET /api/v1/searches/{name}/trends` (volume and sentiment
//! per bucket) and `GET /api/v1/searches/{name}/posts` (the posts behind it, newest first). The
//! query runs in ClickHouse on the posts' search columns (store migration 008), so a series over
//! 90 days of 10M posts is a scan of those columns, not of the texts.

use super::api::{granularity, parse_cursor, sentiment, unavailable, PostJson};
use super::auth::Caller;
use super::params::{ApiError, Params};
use super::AppState;
use crate::searches::Listed;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schema::config::searches::SavedSearch;
use serde_json::{json, Value};
use std::collections::HashMap;
use store::{Granularity, PostFilter};

pub const SEARCH_TRENDS_PARAMS: &[&str] = &["since", "until", "granularity"];
pub const SEARCH_POSTS_PARAMS: &[&str] = &["since", "until", "sentiment", "limit", "cursor"];

type Raw = Query<HashMap<String, String>>;

async fn all(s: &AppState) -> Result<Vec<Listed>, ApiError> {
    crate::searches::all(&s.searches, &s.client, &s.db).await.map_err(unavailable("the saved searches"))
}

async fn find(s: &AppState, name: &str) -> Result<Listed, ApiError> {
    all(s).await?.into_iter().find(|l| l.search.name == name).ok_or_else(|| {
        ApiError::not_found("unknown_search", format!("no saved search {name:?} (GET /api/v1/searches lists them)"))
    })
}

/// The search's ClickHouse condition; a stored search that no longer validates (a place removed
/// from the gazetteer since) is refused with the reason rather than run.
fn condition(search: &SavedSearch) -> Result<String, ApiError> {
    search.sql().map_err(|e| ApiError::invalid("query", format!("the saved query does not parse any more: {e}")))
}

/// `GET /api/v1/searches`.
pub async fn list(State(s): State<AppState>, Query(raw): Raw) -> Result<Json<Value>, ApiError> {
    Params::new(raw, &[], s.tz)?;
    Ok(Json(json!({ "searches": all(&s).await? })))
}

/// `POST /api/v1/searches` `{name, query, places?, sources?, description?}`: 201 for a new name,
/// 200 when it replaces the caller's (or another analyst's) search of that name; answered once
/// the last 90 days of its series are cached.
pub async fn save(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<SavedSearch>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !caller.is_analyst() {
        return Err(ApiError::forbidden("saving a search needs a token of the analyst role"));
    }
    let Json(search) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let places: Vec<&str> = s.place_ids.iter().map(String::as_str).collect();
    let sources: Vec<&str> = s.sources.iter().map(String::as_str).collect();
    if let Some(e) = search.problems(Some(&places), Some(&sources)).into_iter().next() {
        return Err(ApiError::invalid(e.field, e.message));
    }
    if s.searches.get(&search.name).is_some() {
        return Err(ApiError::conflict(format!(
            "{:?} is defined in searches.toml; change it there, or save under another name",
            search.name
        )));
    }
    let existed = all(&s).await?.iter().any(|l| l.search.name == search.name);
    store::searches::save(&s.client, &s.db, &search, caller.name(), chrono::Utc::now())
        .await
        .map_err(unavailable("saving the search"))?;
    tracing::info!(name = %search.name, by = caller.name(), query = %search.query, "search saved");
    // The series of the last SAVE_WARMS_DAYS is computed now, so that the analyst's first look
    // is answered from the cache: the save takes the scan (about a second per word on 10M posts
    // here), the reads stay fast. Older days are left to the warmer. A failure only logs.
    if let Ok(cond) = search.sql() {
        let until = chrono::Utc::now();
        let since = until - chrono::Duration::days(SAVE_WARMS_DAYS.min(i64::from(s.max_range_days)));
        if let Err(e) = s.queries.search_series(&cond, since, until, Granularity::Day).await {
            tracing::warn!(name = %search.name, error = %e, "computing a new search's series failed");
        }
    }
    let saved = find(&s, &search.name).await?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(json!({ "search": saved }))))
}

/// `DELETE /api/v1/searches/{name}`: 204; searches.toml's cannot be deleted here (409).
pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !caller.is_analyst() {
        return Err(ApiError::forbidden("deleting a search needs a token of the analyst role"));
    }
    let found = find(&s, &name).await?;
    if found.origin == "config" {
        return Err(ApiError::conflict(format!("{name:?} is defined in searches.toml; remove it there")));
    }
    store::searches::delete(&s.client, &s.db, &name, caller.name(), chrono::Utc::now())
        .await
        .map_err(unavailable("deleting the search"))?;
    tracing::info!(name = %name, by = caller.name(), "search deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/searches/{name}/trends?since&until&granularity`: `{search, rows, unindexed_posts}`,
/// rows as `/api/v1/trends`' with an empty `key`; `unindexed_posts` counts the range's posts
/// stored before searches existed and not re-indexed (`citypulse searches reindex`), which the
/// rows cannot include.
pub async fn trends(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(raw): Raw,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(raw, SEARCH_TRENDS_PARAMS, s.tz)?;
    let (since, until) = p.range(s.max_range_days)?;
    let granularity = granularity(&p, since, until)?;
    let listed = find(&s, &name).await?;
    let cond = condition(&listed.search)?;
    let ((rows, stats), unindexed) = tokio::try_join!(
        s.queries.search_series(&cond, since, until, granularity),
        s.queries.unindexed_posts(since, until)
    )
    .map_err(unavailable("the search's series"))?;
    tracing::debug!(search = %name, days = stats.days, computed = stats.computed, "search series");
    let rows: Vec<Value> = rows.iter().map(super::summary::trend_json).collect();
    Ok(Json(json!({ "search": listed, "rows": rows, "unindexed_posts": unindexed })))
}

/// `GET /api/v1/searches/{name}/posts?since&until&sentiment&limit&cursor`: `{posts, next_cursor}`,
/// newest first, as `/api/v1/posts`.
pub async fn posts(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(raw): Raw,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(raw, SEARCH_POSTS_PARAMS, s.tz)?;
    let (since, until) = p.range(s.max_range_days)?;
    let limit = p.limit(50, 1000)?;
    let sentiment = sentiment(&p)?;
    let after = p.str("cursor").map(parse_cursor).transpose()?;
    let listed = find(&s, &name).await?;
    let filter = PostFilter {
        since,
        until,
        topic: None,
        place: None,
        source: None,
        sentiment,
        search: Some(condition(&listed.search)?),
    };
    let mut rows =
        s.queries.posts_page(&filter, after.as_ref(), limit + 1).await.map_err(unavailable("the search's posts"))?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(|r| format!("{}:{}", r.created_at, r.key)) } else { None };
    let posts: Vec<PostJson> = rows.iter().map(|r| PostJson::of(r, s.tz)).collect();
    Ok(Json(json!({ "posts": posts, "next_cursor": next })))
}

/// Days of a search's series computed when it is saved (the dashboard's periods are at most 30
/// days; the API's longest common request is 90).
const SAVE_WARMS_DAYS: i64 = 90;

/// How long after start [`warm`] first runs.
const WARM_FIRST: std::time::Duration = std::time::Duration::from_secs(15);

/// How often [`warm`] refreshes every saved search's series.
const WARM_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Keeps every saved search's series cached over the longest range the API serves, so that an
/// analyst's first look at a search does not wait for a scan of months of posts: [`WARM_FIRST`]
/// after start, then every [`WARM_EVERY`] (each round computes only the days that changed, mostly today).
/// Errors are logged; the API computes what is missing anyway.
pub async fn warm(s: AppState, shutdown: tokio_util::sync::CancellationToken) {
    // Not at the very start: with every stage starting at once, the store may not have applied
    // the migrations yet, and the first requests deserve the cores.
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = tokio::time::sleep(WARM_FIRST) => {}
    }
    loop {
        let started = std::time::Instant::now();
        match all(&s).await {
            Ok(searches) => {
                let until = chrono::Utc::now();
                let since = until - chrono::Duration::days(i64::from(s.max_range_days));
                let mut computed = 0;
                for listed in &searches {
                    let Ok(cond) = listed.search.sql() else { continue };
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        r = s.queries.search_series(&cond, since, until, Granularity::Day) => match r {
                            Ok((_, stats)) => computed += stats.computed,
                            Err(e) => tracing::warn!(search = %listed.search.name, error = %e, "warming a search's series failed"),
                        },
                    }
                }
                tracing::info!(
                    searches = searches.len(),
                    days_computed = computed,
                    seconds = started.elapsed().as_secs_f64(),
                    "saved searches warmed"
                );
            }
            Err(e) => tracing::warn!(code = e.code, "listing saved searches to warm failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(WARM_EVERY) => {}
        }
    }
}
