//! Feed timestamps as they are in the wild, not only as RFC 822 / RFC 3339 say: news sites write
//! `2020/1/10 14:33:00`, `2018-09-18 14:38:10` (no zone), `Sat, Dec 16 2023 02:02:33 PM`,
//! `Seg, 24 Set 2018 19:42:40 -0300` (Portuguese names), `Thu, 01 Aug 2019 16:15 EDT`, trailing
//! spaces and line breaks. A time without a zone is read in the city's time zone (the feeds a city
//! follows are mostly its own). feed-rs calls [`feed_timestamp`] for every date it meets.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Times with an offset or zone, after [`normalise`].
const ZONED: [&str; 6] = [
    "%d %b %Y %H:%M:%S %z",
    "%d %b %Y %H:%M %z",
    "%b %d %Y %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y/%m/%d %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
];

/// Times without a zone: read in the city's.
const NAIVE: [&str; 12] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%b %d %Y %I:%M:%S %p",
    "%b %d %Y %I:%M %p",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M",
];

/// The instant `raw` names, or `None` when no known shape fits.
pub fn feed_timestamp(raw: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    let s = normalise(s);
    if let Some(t) = ZONED.iter().find_map(|f| DateTime::parse_from_str(&s, f).ok()) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    zone.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
}

/// One spelling for what the formats above read: whitespace collapsed, the weekday dropped (it
/// is redundant, and written in any language), month names in English, zone names as offsets.
fn normalise(s: &str) -> String {
    let s = s.replace(',', " ");
    let mut words: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
    if words.first().is_some_and(|w| w.chars().all(char::is_alphabetic) && month(w).is_none()) {
        words.remove(0);
    }
    for w in &mut words {
        if let Some(m) = month(w) {
            *w = m.to_owned();
        } else if let Some(offset) = zone_offset(w) {
            *w = offset.to_owned();
        }
    }
    words.join(" ")
}

/// English three-letter month for a month name or abbreviation in English, Vietnamese-site
/// Latin languages (pt, es, it, fr) or German.
fn month(word: &str) -> Option<&'static str> {
    const MONTHS: [(&str, &[&str]); 12] = [
        ("Jan", &["jan", "ene", "gen", "janv", "jän"]),
        ("Feb", &["feb", "fev", "févr", "fév"]),
        ("Mar", &["mar", "mär", "mars"]),
        ("Apr", &["apr", "abr", "avr"]),
        ("May", &["may", "mai", "mag"]),
        ("Jun", &["jun", "giu", "juin"]),
        ("Jul", &["jul", "lug", "juil"]),
        ("Aug", &["aug", "ago", "août", "aoû"]),
        ("Sep", &["sep", "set", "sept"]),
        ("Oct", &["oct", "out", "ott", "okt"]),
        ("Nov", &["nov"]),
        ("Dec", &["dec", "dez", "dic", "déc"]),
    ];
    let w = word.trim_end_matches('.').to_lowercase();
    if w.chars().count() < 3 || !w.chars().all(char::is_alphabetic) {
        return None;
    }
    MONTHS.iter().find(|(_, names)| names.iter().any(|n| w.starts_with(n))).map(|(m, _)| *m)
}

/// Offsets of the zone names feeds use.
fn zone_offset(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_uppercase().as_str() {
        "Z" | "UT" | "UTC" | "GMT" => "+0000",
        "EST" => "-0500",
        "EDT" => "-0400",
        "CST" => "-0600",
        "CDT" => "-0500",
        "MST" => "-0700",
        "MDT" => "-0600",
        "PST" => "-0800",
        "PDT" => "-0700",
        "ICT" => "+0700",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(raw: &str) -> Option<String> {
        feed_timestamp(raw, chrono_tz::Asia::Ho_Chi_Minh).map(|t| t.to_rfc3339())
    }

    #[test]
    fn standard_and_wild_shapes() {
        let cases = [
            ("Wed, 20 Nov 2024 17:30:00 +0700", "2024-11-20T10:30:00+00:00"),
            ("2024-11-20T17:30:00+07:00", "2024-11-20T10:30:00+00:00"),
            (" Wed, 29 May 2019 10:16:00 GMT \r\n  ", "2019-05-29T10:16:00+00:00"),
            ("Tue, 15 Nov 2022 20:15:04 Z", "2022-11-15T20:15:04+00:00"),
            ("mer, 16 nov 2022 00:38:15 +0100", "2022-11-15T23:38:15+00:00"),
            ("Seg, 24 Set 2018 19:42:40 -0300", "2018-09-24T22:42:40+00:00"),
            ("Thu, 01 Aug 2019 16:15 EDT", "2019-08-01T20:15:00+00:00"),
            ("Mon, 10 Jan 2023 21:53:01 +1030", "2023-01-10T11:23:01+00:00"),
            // No zone: the city's (UTC+7).
            ("2018-09-18 14:38:10", "2018-09-18T07:38:10+00:00"),
            ("2020/1/10 14:33:00", "2020-01-10T07:33:00+00:00"),
            ("16/12/2023 14:02", "2023-12-16T07:02:00+00:00"),
            ("Sat, Dec 16 2023 02:02:33 PM", "2023-12-16T07:02:33+00:00"),
            ("2023-12-16", "2023-12-15T17:00:00+00:00"),
        ];
        for (raw, want) in cases {
            assert_eq!(utc(raw).as_deref(), Some(want), "{raw:?}");
        }
        for raw in ["", "soon", "32/13/2023 25:00", "Mon, 99 Foo 2023"] {
            assert_eq!(utc(raw), None, "{raw:?}");
        }
    }
}
