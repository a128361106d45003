//! The `/api/v1` handlers. Each checks its parameters (`params`), asks the store (every value a
//! bind), and answers JSON; a failure on our side is a 503 without internals (logged here).

use super::params::{ApiError, Params};
use super::summary::{self, Summary};
use super::AppState;
use axum::extract::{Query, State};
use axum::Json;
use schema::terms::TermMatcher;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use store::{Dimension, Granularity, PageAfter, PostFilter, TopPost, TrendQuery};

type Answer = Result<Json<Value>, ApiError>;
type Raw = Query<HashMap<String, String>>;

const SENTIMENTS: [&str; 3] = ["negative", "neutral", "positive"];

/// The query parameters of each endpoint: the handlers check requests against these lists and
/// `/openapi.json` is built from them, so the spec cannot drift from what is accepted.
pub const TRENDS_PARAMS: &[&str] = &["since", "until", "by", "granularity", "topic", "place", "source", "sentiment"];
pub const POSTS_PARAMS: &[&str] = &["since", "until", "topic", "place", "source", "sentiment", "q", "limit", "cursor"];
pub const SUMMARY_PARAMS: &[&str] = &["date"];
pub const ALERTS_PARAMS: &[&str] = &["since", "state"];

/// Longest range hourly trends are served for, days.
const MAX_HOURLY_DAYS: i64 = 31;

pub(crate) fn unavailable(what: &'static str) -> impl Fn(store::StoreError) -> ApiError {
    move |e| {
        tracing::warn!(error = %e, "{what} failed");
        ApiError::internal(what)
    }
}

/// The `granularity` parameter (default day). Hourly rows over months are tens of thousands of
/// points no chart can show (and half a second to build): longer ranges are asked by the day.
pub(crate) fn granularity(
    p: &Params,
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<Granularity, ApiError> {
    let granularity = match p.choice("granularity", &["hour", "day"], "day")? {
        "hour" => Granularity::Hour,
        _ => Granularity::Day,
    };
    if granularity == Granularity::Hour && until - since > chrono::Duration::days(MAX_HOURLY_DAYS) {
        return Err(ApiError::invalid(
            "granularity",
            format!("hourly buckets cover at most {MAX_HOURLY_DAYS} days; use granularity=day for longer ranges"),
        ));
    }
    Ok(granularity)
}

pub(crate) fn sentiment(p: &Params) -> Result<Option<schema::SentimentLabel>, ApiError> {
    Ok(match p.str("sentiment") {
        None => None,
        Some(_) => Some(match p.choice("sentiment", &SENTIMENTS, "neutral")? {
            "negative" => schema::SentimentLabel::Negative,
            "positive" => schema::SentimentLabel::Positive,
            _ => schema::SentimentLabel::Neutral,
        }),
    })
}

/// `GET /api/v1/trends`: the rows of `citypulse trends --format json`.
pub async fn trends(State(s): State<AppState>, Query(raw): Raw) -> Answer {
    let p = Params::new(raw, TRENDS_PARAMS, s.tz)?;
    let (since, until) = p.range(s.max_range_days)?;
    let by = match p.choice("by", &["topic", "place", "source"], "topic")? {
        "place" => Dimension::Place,
        "source" => Dimension::Source,
        _ => Dimension::Topic,
    };
    let granularity = granularity(&p, since, until)?;
    let query = TrendQuery {
        topic: p.id("topic", &s.topic_ids)?.map(str::to_owned),
        place: p.id("place", &s.place_ids)?.map(str::to_owned),
        source: p.id("source", &s.sources)?.map(str::to_owned),
        sentiment: sentiment(&p)?,
        ..TrendQuery::new(since, until, by, granularity)
    };
    let rows = s.queries.trends(&query).await.map_err(unavailable("the trends query"))?;
    let rows: Vec<Value> = rows.iter().map(summary::trend_json).collect();
    Ok(Json(json!({ "rows": rows })))
}

/// A post as the API shows it: `store::TopPost` with `created_at` as RFC 3339 in the city's zone.
#[derive(Debug, Clone, Serialize)]
pub struct PostJson {
    pub key: String,
    pub source: String,
    pub url: String,
    pub text_redacted: String,
    pub sentiment: String,
    pub score: f32,
    pub topics: Vec<String>,
    pub places: Vec<String>,
    pub created_at: String,
}

impl PostJson {
    pub fn of(p: &TopPost, tz: chrono_tz::Tz) -> Self {
        let at = chrono::DateTime::from_timestamp(i64::from(p.created_at), 0).unwrap_or_default().with_timezone(&tz);
        PostJson {
            key: p.key.clone(),
            source: p.source.clone(),
            url: p.url.clone(),
            text_redacted: p.text_redacted.clone(),
            sentiment: p.sentiment.clone(),
            score: p.score,
            topics: p.topics.clone(),
            places: p.places.clone(),
            created_at: at.to_rfc3339(),
        }
    }
}

/// Rows read per round while `q` filters in Rust, and rounds per request: a rare term over a long
/// range returns a short page with a cursor rather than scanning without end.
const SCAN_CHUNK: u32 = 1000;
const SCAN_ROUNDS: usize = 20;

/// `GET /api/v1/posts`: newest first, `q` matched as `watch_terms` are, `cursor` for the next page.
pub async fn posts(State(s): State<AppState>, Query(raw): Raw) -> Answer {
    let p = Params::new(raw, POSTS_PARAMS, s.tz)?;
    let (since, until) = p.range(s.max_range_days)?;
    let limit = p.limit(50, 1000)?;
    let filter = PostFilter {
        since,
        until,
        topic: p.id("topic", &s.topic_ids)?.map(str::to_owned),
        place: p.id("place", &s.place_ids)?.map(str::to_owned),
        source: p.id("source", &s.sources)?.map(str::to_owned),
        sentiment: sentiment(&p)?,
        search: None,
    };
    let matcher = match p.str("q") {
        Some(q) => Some(TermMatcher::new(&[q]).map_err(|e| ApiError::invalid("q", e.to_string()))?),
        None => None,
    };
    let mut after = p.str("cursor").map(parse_cursor).transpose()?;
    let mut found: Vec<TopPost> = Vec::new();
    let mut more = false;
    for _ in 0..SCAN_ROUNDS {
        let chunk = if matcher.is_some() { SCAN_CHUNK } else { limit + 1 };
        let rows =
            s.queries.posts_page(&filter, after.as_ref(), chunk).await.map_err(unavailable("the posts query"))?;
        let exhausted = (rows.len() as u32) < chunk;
        for row in rows {
            if found.len() as u32 == limit {
                more = true;
                break;
            }
            after = Some(PageAfter { created_at: row.created_at, key: row.key.clone() });
            if matcher.as_ref().is_none_or(|m| m.is_match(&row.text_redacted)) {
                found.push(row);
            }
        }
        if more || exhausted {
            break;
        }
        more = true; // rounds used up with rows left: the cursor goes on from here
    }
    let next = if more { after.map(|a| format!("{}:{}", a.created_at, a.key)) } else { None };
    let posts: Vec<PostJson> = found.iter().map(|p| PostJson::of(p, s.tz)).collect();
    Ok(Json(json!({ "posts": posts, "next_cursor": next })))
}

pub(crate) fn parse_cursor(c: &str) -> Result<PageAfter, ApiError> {
    let bad = || ApiError::invalid("cursor", "not a cursor this API gave out (use next_cursor as it is)");
    let (t, key) = c.split_once(':').ok_or_else(bad)?;
    Ok(PageAfter { created_at: t.parse().map_err(|_| bad())?, key: key.to_owned() })
}

/// `GET /api/v1/summary?date=YYYY-MM-DD`: the daily picture.
pub async fn summary(State(s): State<AppState>, Query(raw): Raw) -> Result<Json<Summary>, ApiError> {
    let p = Params::new(raw, SUMMARY_PARAMS, s.tz)?;
    let date = match p.str("date") {
        None => chrono::Utc::now().with_timezone(&s.tz).date_naive(),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::invalid("date", format!("{d:?} is not a date (YYYY-MM-DD)")))?,
    };
    summary::build(&s, date).await.map(Json).map_err(unavailable("the daily summary"))
}

/// `GET /api/v1/alerts?since&state`: alerts fired since, with their state and deliveries.
pub async fn alerts(State(s): State<AppState>, Query(raw): Raw) -> Answer {
    let p = Params::new(raw, ALERTS_PARAMS, s.tz)?;
    let since = p.time("since", "7d")?;
    let state = p.str("state").map(|_| p.choice("state", &["firing", "resolved"], "firing")).transpose()?;
    let mut alerts = s.history.list(since.timestamp()).await.map_err(|e| unavailable("the alert history")(e.into()))?;
    if let Some(state) = state {
        alerts.retain(|a| a.row.state == state);
    }
    Ok(Json(json!({ "alerts": alerts })))
}

pub async fn topics(State(s): State<AppState>, Query(raw): Raw) -> Answer {
    Params::new(raw, &[], s.tz)?;
    Ok(Json(json!({ "topics": s.topics })))
}

pub async fn places(State(s): State<AppState>, Query(raw): Raw) -> Answer {
    Params::new(raw, &[], s.tz)?;
    Ok(Json(json!({ "places": s.places })))
}

/// `GET /api/v1/sources`: every configured source, and whether it is one of the city's own
/// channels (`official`, from `[[intake]]`) or public social media and news.
pub async fn sources(State(s): State<AppState>, Query(raw): Raw) -> Answer {
    Params::new(raw, &[], s.tz)?;
    let sources: Vec<Value> =
        s.sources.iter().map(|id| json!({ "id": id, "official": s.official.contains(id) })).collect();
    Ok(Json(json!({ "sources": sources })))
}
