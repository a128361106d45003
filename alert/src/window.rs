//! The windows of one evaluation: `[T − w, T)` with T the evaluation time floored to the minute,
//! and the baseline's samples, the same window one season (a week, a day) or one window earlier,
//! back to `baseline_hours`. Sample `k` (1..=samples) is `[T − k·P − w, T − k·P)`; `k = 0` is now.

use chrono::{DateTime, Timelike, Utc};
use schema::config::alerts::AlertRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// T, unix seconds, a whole minute.
    pub end: i64,
    /// w, seconds.
    pub width: i64,
    /// P, seconds: a season, or `width` without seasonality.
    pub period: i64,
    /// How many earlier windows the baseline holds.
    pub samples: i64,
}

/// The evaluation time floored to the minute: windows slide by the minute.
pub fn floor_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at)
}

impl Windows {
    pub fn for_rule(rule: &AlertRule, at: DateTime<Utc>) -> Self {
        let width = i64::from(rule.window_minutes) * 60;
        let period = rule.seasonality.period_minutes().map_or(width, |m| i64::from(m) * 60);
        let samples = i64::from(rule.baseline_hours) * 3600 / period;
        Windows { end: floor_minute(at).timestamp(), width, period, samples }
    }

    pub fn start(&self) -> i64 {
        self.end - self.width
    }

    /// Start of sample `k` (0 = the current window).
    pub fn sample_start(&self, k: i64) -> i64 {
        self.end - k * self.period - self.width
    }

    /// The earliest second any sample covers.
    pub fn earliest(&self) -> i64 {
        self.sample_start(self.samples)
    }

    /// Which sample a post at `t` (unix seconds, before `end`) falls in, if any. The same
    /// arithmetic as the SQL in `observe`, kept here to be tested.
    pub fn sample_of(&self, t: i64) -> Option<i64> {
        let d = self.end - t - 1;
        (d >= 0 && d % self.period < self.width && d / self.period <= self.samples).then_some(d / self.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rule(extra: &str) -> AlertRule {
        toml::from_str(&format!("name = \"r\"\nkind = \"volume_spike\"\nthreshold = 3.0\nnotify = [\"l\"]\n{extra}"))
            .expect("rule")
    }

    #[test]
    fn windows_end_at_the_minute_and_samples_step_by_season() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 8, 17, 42).unwrap();
        let w = Windows::for_rule(&rule("window_minutes = 60"), at);
        assert_eq!(w.end, Utc.with_ymd_and_hms(2026, 11, 30, 8, 17, 0).unwrap().timestamp());
        assert_eq!((w.width, w.period, w.samples), (3600, 7 * 86_400, 4));
        assert_eq!(w.sample_of(w.end - 1), Some(0));
        assert_eq!(w.sample_of(w.start()), Some(0));
        assert_eq!(w.sample_of(w.start() - 1), None, "between samples");
        assert_eq!(w.sample_of(w.end - 7 * 86_400 - 1), Some(1));
        assert_eq!(w.sample_of(w.sample_start(4)), Some(4));
        assert_eq!(w.sample_of(w.sample_start(4) - 7 * 86_400), None, "beyond the baseline");
        assert_eq!(w.sample_of(w.end), None, "T itself is outside [T − w, T)");
        let back_to_back =
            Windows::for_rule(&rule("window_minutes = 30\nseasonality = \"none\"\nbaseline_hours = 24"), at);
        assert_eq!((back_to_back.period, back_to_back.samples), (1800, 48));
        assert_eq!(back_to_back.sample_of(back_to_back.start() - 1), Some(1));
    }
}
