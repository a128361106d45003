//! The alert event: the webhook body, the `--format json` line and the `alert_events` row's JSON.
//! Times are RFC 3339 in the city's offset and are evaluation times, not wall-clock times.

use crate::judge::{Baseline, Counts, Severity};
use crate::observe::{PostRow, Scope};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The event's body version (`version`).
pub const EVENT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub version: u32,
    pub event_id: String,
    /// The same for the fired, renotified and resolved events of one alert.
    pub alert_id: String,
    /// `fired | renotified | resolved`.
    pub event: String,
    /// `firing | resolved`.
    pub state: String,
    pub rule: String,
    pub kind: String,
    pub severity: String,
    pub topic: String,
    pub place: String,
    /// The saved search a `search = "name"` rule watches (its topic is then `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    pub window: Span,
    pub observed: f64,
    /// Null for `watch_terms`; median and spread null below three samples.
    pub baseline: Option<BaselineJson>,
    pub threshold: f64,
    pub posts: i64,
    pub sentiment: SentimentCounts,
    pub terms: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub dashboard_url: Option<String>,
    pub fired_at: DateTime<FixedOffset>,
    pub resolved_at: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start: DateTime<FixedOffset>,
    pub end: DateTime<FixedOffset>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineJson {
    pub median: Option<f64>,
    pub spread: Option<f64>,
    pub samples: usize,
}

impl BaselineJson {
    pub fn new(baseline: Option<Baseline>, samples: usize) -> Self {
        BaselineJson { median: baseline.map(|b| b.median), spread: baseline.map(|b| b.spread), samples }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentimentCounts {
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
}

impl From<Counts> for SentimentCounts {
    fn from(c: Counts) -> Self {
        SentimentCounts { negative: c.negative, neutral: c.neutral, positive: c.positive }
    }
}

/// One post that shows the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub key: String,
    pub source: String,
    pub url: Option<String>,
    pub text_redacted: String,
    pub sentiment: String,
    pub score: f32,
    pub created_at: DateTime<FixedOffset>,
}

impl Evidence {
    pub fn of(p: &PostRow, zone: Tz) -> Self {
        Evidence {
            key: p.key.clone(),
            source: p.source.clone(),
            url: Some(p.url.clone()).filter(|u| !u.is_empty()),
            text_redacted: p.text_redacted.clone(),
            sentiment: p.sentiment.clone(),
            score: p.score,
            created_at: local(DateTime::from_timestamp(p.created_at, 0).unwrap_or_default(), zone),
        }
    }
}

/// `t` in the city's offset.
pub fn local(t: DateTime<Utc>, zone: Tz) -> DateTime<FixedOffset> {
    zone.from_utc_datetime(&t.naive_utc()).fixed_offset()
}

/// A stable id: the same inputs always give the same id, so an evaluation repeated after a crash
/// names the same alert and event (and `alert_events` keeps one row per event).
pub fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(&h.finalize()[..12])
}

/// `{public_url}/?topic=…&place=…&since=…&until=…`, plus `&search=…` for a rule scoped by a saved
/// search (the page then shows that search's series).
pub fn dashboard_url(
    public_url: Option<&url::Url>,
    scope: &Scope,
    search: Option<&str>,
    window: &Span,
) -> Option<String> {
    let mut url = public_url?.clone();
    url.set_path(&format!("{}/", url.path().trim_end_matches('/')));
    url.query_pairs_mut()
        .append_pair("topic", &scope.topic)
        .append_pair("place", &scope.place)
        .append_pair("since", &window.start.to_rfc3339())
        .append_pair("until", &window.end.to_rfc3339());
    if let Some(s) = search {
        url.query_pairs_mut().append_pair("search", s);
    }
    Some(url.to_string())
}

pub fn severity_of(s: &str) -> Severity {
    if s == "critical" {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

/// A clearly marked test event (`citypulse alert test-notify`): rule `test-notification`, kind
/// `test`, no real numbers, its one "post" saying it is a test.
pub fn test_event(zone: Tz, now: DateTime<Utc>) -> AlertEvent {
    let at = local(now, zone);
    let alert_id = stable_id(&["test-notification", &now.timestamp().to_string()]);
    AlertEvent {
        version: EVENT_VERSION,
        event_id: stable_id(&[&alert_id, "fired"]),
        alert_id,
        event: "fired".into(),
        state: "firing".into(),
        rule: "test-notification".into(),
        kind: "test".into(),
        severity: "warning".into(),
        topic: "*".into(),
        place: "*".into(),
        search: None,
        window: Span { start: at - chrono::Duration::hours(1), end: at },
        observed: 0.0,
        baseline: None,
        threshold: 0.0,
        posts: 0,
        sentiment: SentimentCounts { negative: 0, neutral: 0, positive: 0 },
        terms: Vec::new(),
        evidence: vec![Evidence {
            key: "test:0".into(),
            source: "citypulse".into(),
            url: None,
            text_redacted: "Đây là thông báo thử của citypulse, không có sự việc nào. This is a citypulse test notification; nothing happened.".into(),
            sentiment: "neutral".into(),
            score: 0.0,
            created_at: at,
        }],
        dashboard_url: None,
        fired_at: at,
        resolved_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_ids() {
        let zone: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let end = local(Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap(), zone);
        assert_eq!(end.to_rfc3339(), "2026-11-30T08:00:00+07:00");
        let span = Span { start: end - chrono::Duration::hours(1), end };
        let scope = Scope { topic: "flooding".into(), place: "*".into() };
        let base = url::Url::parse("https://citypulse.example.vn/app").unwrap();
        assert_eq!(
            dashboard_url(Some(&base), &scope, None, &span).unwrap(),
            "https://citypulse.example.vn/app/?topic=flooding&place=*&since=2026-11-30T07%3A00%3A00%2B07%3A00&until=2026-11-30T08%3A00%3A00%2B07%3A00"
        );
        assert_eq!(dashboard_url(None, &scope, None, &span), None);
        assert_eq!(stable_id(&["a", "b"]), stable_id(&["a", "b"]));
        assert_ne!(stable_id(&["ab", ""]), stable_id(&["a", "b"]));
    }
}
