//! `--since` / `--until` / `--at` values: a duration back from now (`7d`, `12h`, `30m`), a date or
//! date-time in the city's time zone (`2026-11-20`, `2026-11-20 08:00`), or RFC 3339 with an
//! offset (`2026-11-20T08:00:00+07:00`). One parser for every command.

use anyhow::{bail, Result};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

pub fn parse_instant(value: &str, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let v = value.trim();
    if let Some((number, unit)) = v.char_indices().last().map(|(i, c)| (&v[..i], c)) {
        if let Ok(n) = number.parse::<i64>() {
            let span = match unit {
                'd' => Duration::days(n),
                'h' => Duration::hours(n),
                'm' => Duration::minutes(n),
                'w' => Duration::weeks(n),
                _ => bail!("{value:?}: unknown unit {unit:?} (use m, h, d or w, e.g. 7d)"),
            };
            if n < 0 {
                bail!("{value:?}: durations count back from now and must not be negative");
            }
            return Ok(now - span);
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = if let Ok(date) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)
    } else {
        ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
    };
    match local.and_then(|l| zone.from_local_datetime(&l).earliest()) {
        Some(t) => Ok(t.with_timezone(&Utc)),
        None => bail!(
            "{value:?} is neither a duration (7d, 12h), a date/time in the city's zone (2026-11-20, 2026-11-20 08:00) \
             nor RFC 3339 (2026-11-20T08:00:00+07:00)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_local_dates() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let hcm: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        assert_eq!(parse_instant("7d", hcm, now).unwrap(), now - Duration::days(7));
        assert_eq!(parse_instant("12h", hcm, now).unwrap(), now - Duration::hours(12));
        // Midnight in Ho Chi Minh City is 17:00 UTC the day before.
        assert_eq!(
            parse_instant("2026-11-20", hcm, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 19, 17, 0, 0).unwrap()
        );
        assert_eq!(
            parse_instant("2026-11-20 08:30", hcm, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 1, 30, 0).unwrap()
        );
        assert_eq!(
            parse_instant("2026-11-20T08:30:00+07:00", hcm, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 1, 30, 0).unwrap()
        );
        assert!(parse_instant("7x", hcm, now).is_err());
        assert!(parse_instant("yesterday", hcm, now).is_err());
    }
}
