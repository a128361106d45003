//! Server hints about when to come back.
//!
//! - `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
//! - Mastodon: `X-RateLimit-Remaining` (integer) and `X-RateLimit-Reset` (an ISO 8601 timestamp).
//! - Reddit: `X-Ratelimit-Remaining` (a float such as `598.0`) and `X-Ratelimit-Reset` (seconds
//!   until the window resets). Header names are case-insensitive, so one reader serves both.
//!
//! Every wait is capped: a hostile or broken server must not park a crawler for a year.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The longest wait any header can impose.
pub const MAX_HINT: Duration = Duration::from_secs(3600);

/// Parses a `Retry-After` value relative to `now`. A date in the past means "now" (zero).
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_HINT));
    }
    // RFC 2822 parsing accepts the IMF-fixdate form (`Wed, 21 Oct 2015 07:28:00 GMT`).
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some(until(at, now))
}

/// How long to wait before the next request to this host, when the rate-limit headers say the
/// window is used up; `None` while requests remain or the headers are absent or unreadable.
pub fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let remaining: f64 = header_str(headers, "x-ratelimit-remaining")?.trim().parse().ok()?;
    if !remaining.is_finite() || remaining >= 1.0 {
        return None;
    }
    let reset = header_str(headers, "x-ratelimit-reset")?.trim();
    if let Ok(secs) = reset.parse::<f64>() {
        // Reddit: seconds until reset. (Mastodon's reset is a timestamp, never a bare number.)
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(MAX_HINT.as_secs_f64())));
        }
        return None;
    }
    let at = DateTime::parse_from_rfc3339(reset).ok()?.with_timezone(&Utc);
    Some(until(at, now))
}

/// `Retry-After` from a response's headers.
pub fn retry_after_header(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    retry_after(header_str(headers, "retry-after")?, now)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO).min(MAX_HINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z").unwrap().with_timezone(&Utc)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_and_date() {
        assert_eq!(retry_after("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now()), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now()), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999999", now()), Some(MAX_HINT));
        assert_eq!(retry_after("soon", now()), None);
        assert_eq!(retry_after("-5", now()), None);
    }

    #[test]
    fn mastodon_rate_limit_headers() {
        let h = headers(&[
            ("X-RateLimit-Limit", "300"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "2015-10-21T07:32:00.000Z"),
        ]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(300)));
        let h = headers(&[("X-RateLimit-Remaining", "299"), ("X-RateLimit-Reset", "2015-10-21T07:32:00.000Z")]);
        assert_eq!(rate_limit_wait(&h, now()), None);
    }

    #[test]
    fn reddit_rate_limit_headers() {
        let h = headers(&[("x-ratelimit-used", "100"), ("x-ratelimit-remaining", "0.0"), ("x-ratelimit-reset", "42")]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(42)));
        let h = headers(&[("x-ratelimit-remaining", "598.0"), ("x-ratelimit-reset", "42")]);
        assert_eq!(rate_limit_wait(&h, now()), None);
        assert_eq!(rate_limit_wait(&headers(&[("x-ratelimit-remaining", "0")]), now()), None);
    }

    proptest! {
        #[test]
        fn arbitrary_values_never_panic_and_stay_capped(v in "\\PC{0,40}") {
            if let Some(d) = retry_after(&v, now()) {
                prop_assert!(d <= MAX_HINT);
            }
        }
    }
}
