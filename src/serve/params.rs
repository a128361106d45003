//! Query parameters of the API: every endpoint names the keys it takes, so an unknown key (a typo
//! such as `sinse`) is a 400 naming it instead of a silently ignored filter. Times take the forms
//! of `--since` (one parser for the CLI and the API). Errors are `{"error": {code, message, param}}`.

use crate::commands::time_args::parse_instant;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use std::collections::HashMap;

/// A 400 with the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_parameter",
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// A failure on our side, said without internals (they go to the log).
    pub fn internal(what: &str) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: format!("{what} is unavailable right now; try again shortly"),
            param: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::FORBIDDEN, code: "forbidden", message: message.into(), param: None }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, code, message: message.into(), param: None }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::CONFLICT, code: "conflict", message: message.into(), param: None }
    }

    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "this API needs Authorization: Bearer <token>".into(),
            param: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "param": self.param}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The query of one request, checked against the keys its endpoint takes.
pub struct Params {
    values: HashMap<String, String>,
    tz: Tz,
    now: DateTime<Utc>,
}

impl Params {
    pub fn new(values: HashMap<String, String>, allowed: &[&str], tz: Tz) -> Result<Self, ApiError> {
        let mut unknown: Vec<&String> = values.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
        unknown.sort();
        if let Some(key) = unknown.first() {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "unknown_parameter",
                message: format!("unknown parameter {key:?}; this endpoint takes {}", allowed.join(", ")),
                param: Some((*key).clone()),
            });
        }
        Ok(Params { values, tz, now: Utc::now() })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn time(&self, key: &str, default: &str) -> Result<DateTime<Utc>, ApiError> {
        let value = self.str(key).unwrap_or(default);
        parse_instant(value, self.tz, self.now).map_err(|e| ApiError::invalid(key, e.to_string()))
    }

    /// `since` (default 7d) and `until` (default now), `until` after `since`, at most `max_days` apart.
    pub fn range(&self, max_days: u32) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let since = self.time("since", "7d")?;
        let until = match self.str("until") {
            Some(_) => self.time("until", "")?,
            None => self.now,
        };
        if until <= since {
            return Err(ApiError::invalid("until", format!("until ({until}) must be after since ({since})")));
        }
        if until - since > chrono::Duration::days(i64::from(max_days)) {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "range_too_large",
                message: format!("since..until spans more than {max_days} days (serve.max_range_days)"),
                param: Some("since".into()),
            });
        }
        Ok((since, until))
    }

    /// One of `choices`, or `default` when absent.
    pub fn choice<'a>(&self, key: &str, choices: &[&'a str], default: &'a str) -> Result<&'a str, ApiError> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => choices
                .iter()
                .find(|c| **c == v)
                .copied()
                .ok_or_else(|| ApiError::invalid(key, format!("{v:?} is not one of {}", choices.join(", ")))),
        }
    }

    /// An id that must be one of `known` (topics, places, sources), if given.
    pub fn id<'a>(&'a self, key: &str, known: &[String]) -> Result<Option<&'a str>, ApiError> {
        match self.str(key) {
            None => Ok(None),
            Some(v) if known.iter().any(|k| k == v) => Ok(Some(v)),
            Some(v) => Err(ApiError::invalid(key, format!("unknown {key} {v:?}"))),
        }
    }

    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.str("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid("limit", format!("{v:?}: limit is a whole number from 1 to {max}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)], allowed: &[&str]) -> Result<Params, ApiError> {
        let values = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Params::new(values, allowed, "Asia/Ho_Chi_Minh".parse().unwrap())
    }

    #[test]
    fn unknown_keys_bad_values_and_ranges_name_their_parameter() {
        let e = params(&[("sinse", "7d")], &["since", "until"]).err().unwrap();
        assert_eq!((e.code, e.param.as_deref()), ("unknown_parameter", Some("sinse")));
        let p = params(&[("since", "2026-11-20"), ("until", "2026-11-19")], &["since", "until"]).unwrap();
        assert_eq!(p.range(400).unwrap_err().param.as_deref(), Some("until"));
        let p = params(&[("since", "900d")], &["since"]).unwrap();
        assert_eq!(p.range(400).unwrap_err().code, "range_too_large");
        let p = params(&[("since", "yesterday")], &["since"]).unwrap();
        assert_eq!(p.range(400).unwrap_err().param.as_deref(), Some("since"));
        let p = params(&[("limit", "1001")], &["limit"]).unwrap();
        assert_eq!(p.limit(50, 1000).unwrap_err().param.as_deref(), Some("limit"));
        let p = params(&[("by", "colour")], &["by"]).unwrap();
        assert!(p.choice("by", &["topic", "place"], "topic").is_err());
        let p = params(&[("topic", "floods")], &["topic"]).unwrap();
        assert!(p.id("topic", &["flooding".to_owned()]).is_err());
    }
}
