//! Whether a window is unusual: robust baselines (median and MAD of earlier windows) and the firing
//! conditions of each rule kind. Pure functions over counts, so every kind is unit-tested without
//! ClickHouse.

use schema::config::alerts::{AlertRule, RuleKind};
use serde::Serialize;

/// Posts in one window of one alert key, by sentiment (signed sums: exact under re-analysis).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub posts: i64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
}

impl Counts {
    fn negative_share(&self) -> Option<f64> {
        (self.posts > 0).then(|| self.negative as f64 / self.posts as f64)
    }

    fn net(&self) -> Option<f64> {
        (self.posts > 0).then(|| (self.positive - self.negative) as f64 / self.posts as f64)
    }
}

/// The baseline a window was judged against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baseline {
    pub median: f64,
    /// 1.4826 × MAD (a standard deviation for normal data, robust to the odd incident), floored
    /// at the rule's `min_spread` so a flat history does not make every wobble "unusual".
    pub spread: f64,
    pub samples: usize,
}

/// The baseline from sample values, or `None` below three samples: a median of fewer is no
/// baseline.
pub fn baseline(mut values: Vec<f64>, min_spread: f64) -> Option<Baseline> {
    if values.len() < 3 {
        return None;
    }
    let median = median_of(&mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    let mad = median_of(&mut deviations);
    Some(Baseline { median, spread: (1.4826 * mad).max(min_spread), samples: values.len() })
}

fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Severity of a firing alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The verdict on one window of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The value the rule's kind observes (share, drop, ratio or matching posts).
    pub observed: f64,
    pub baseline: Option<Baseline>,
    /// Samples available (also when too few for a baseline).
    pub samples: usize,
    /// `Some` when the rule's condition holds.
    pub firing: Option<Severity>,
    /// Why a kind that needs a baseline could not judge (fewer than 3 samples).
    pub insufficient_history: bool,
}

/// Judges the window `now` against the earlier windows `history` (for `watch_terms`, `now.posts`
/// is the number of matching posts and `history` is not used).
pub fn judge(rule: &AlertRule, now: Counts, history: &[Counts]) -> Verdict {
    let min_spread = rule.min_spread();
    let (observed, baseline, samples, holds) = match rule.kind {
        RuleKind::NegativeShare => {
            let values: Vec<f64> = history.iter().filter_map(Counts::negative_share).collect();
            let share = now.negative_share().unwrap_or(0.0);
            let base = baseline(values.clone(), min_spread);
            let unusual = base.is_none_or(|b| share >= b.median + rule.min_deviation * b.spread);
            let holds = share >= rule.threshold && unusual && now.posts >= i64::from(rule.min_posts);
            (share, base, values.len(), holds)
        }
        RuleKind::NetSentimentDrop => {
            let values: Vec<f64> = history.iter().filter_map(Counts::net).collect();
            let base = baseline(values.clone(), min_spread);
            let drop = match (base, now.net()) {
                (Some(b), Some(net)) => b.median - net,
                _ => 0.0,
            };
            let holds = base.is_some_and(|b| {
                drop >= rule.threshold
                    && drop >= rule.min_deviation * b.spread
                    && now.posts >= i64::from(rule.min_posts)
            });
            (drop, base, values.len(), holds)
        }
        RuleKind::VolumeSpike => {
            let values: Vec<f64> = history.iter().map(|c| c.posts as f64).collect();
            let base = baseline(values.clone(), min_spread);
            let posts = now.posts as f64;
            // A median of zero posts (a quiet hour) counts as one post, so the ratio stays finite.
            let ratio = base.map_or(0.0, |b| posts / b.median.max(1.0));
            let holds = base.is_some_and(|b| {
                ratio >= rule.threshold
                    && posts >= b.median + rule.min_deviation * b.spread
                    && now.posts >= i64::from(rule.min_posts)
            });
            (ratio, base, values.len(), holds)
        }
        RuleKind::WatchTerms => (now.posts as f64, None, 0, now.posts as f64 >= rule.threshold),
    };
    let needs_history = matches!(rule.kind, RuleKind::NetSentimentDrop | RuleKind::VolumeSpike);
    let severity = match rule.critical_threshold {
        Some(c) if observed >= c => Severity::Critical,
        _ => Severity::Warning,
    };
    Verdict {
        observed,
        baseline,
        samples,
        firing: holds.then_some(severity),
        insufficient_history: needs_history && baseline.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_kind: &str, threshold: f64) -> AlertRule {
        toml::from_str(&format!(
            "name = \"r\"\nkind = \"{toml_kind}\"\nthreshold = {threshold:?}\nmin_posts = 10\nnotify = [\"log\"]\n{}",
            if toml_kind == "watch_terms" { "terms = [\"ngập\"]" } else { "" }
        ))
        .expect("rule")
    }

    fn counts(posts: i64, negative: i64, positive: i64) -> Counts {
        Counts { posts, negative, neutral: posts - negative - positive, positive }
    }

    #[test]
    fn baseline_is_median_and_scaled_mad_with_a_floor() {
        let b = baseline(vec![10.0, 12.0, 11.0, 50.0, 9.0], 1.0).expect("baseline");
        assert_eq!(b.median, 11.0);
        assert!((b.spread - 1.4826).abs() < 1e-9, "{b:?}: the outlier 50 does not widen the spread");
        assert_eq!(baseline(vec![5.0; 4], 0.02).expect("flat").spread, 0.02);
        assert_eq!(baseline(vec![1.0, 2.0], 1.0), None);
    }

    #[test]
    fn negative_share_needs_threshold_deviation_and_posts() {
        let r = rule("negative_share", 0.5);
        let calm = vec![counts(40, 8, 20), counts(40, 10, 20), counts(40, 9, 20), counts(40, 8, 22)];
        assert!(judge(&r, counts(40, 30, 5), &calm).firing.is_some());
        assert!(judge(&r, counts(5, 5, 0), &calm).firing.is_none(), "a handful of posts is not an alert");
        // Every sample as negative as now: usual for this hour, silent.
        let rush = vec![counts(40, 30, 5); 4];
        assert!(judge(&r, counts(40, 30, 5), &rush).firing.is_none());
        // Without history: threshold and min_posts alone.
        let v = judge(&r, counts(40, 30, 5), &[]);
        assert!(v.firing.is_some() && v.baseline.is_none() && !v.insufficient_history);
    }

    #[test]
    fn net_drop_and_volume_never_fire_without_history() {
        for kind in ["net_sentiment_drop", "volume_spike"] {
            let v = judge(&rule(kind, 1.5), counts(400, 390, 0), &[counts(10, 0, 10)]);
            assert!(v.firing.is_none() && v.insufficient_history, "{kind}");
        }
        let history = vec![counts(20, 2, 12); 5];
        let drop = judge(&rule("net_sentiment_drop", 0.3), counts(20, 14, 2), &history);
        assert!((drop.observed - (0.5 - (-0.6))).abs() < 1e-9 && drop.firing.is_some(), "{drop:?}");
        let spike = judge(&rule("volume_spike", 3.0), counts(80, 2, 12), &history);
        assert_eq!((spike.observed, spike.firing), (4.0, Some(Severity::Warning)));
        assert!(judge(&rule("volume_spike", 3.0), counts(50, 2, 12), &history).firing.is_none());
    }

    #[test]
    fn watch_terms_counts_matching_posts_and_severity_follows_critical() {
        let mut r = rule("watch_terms", 3.0);
        assert!(judge(&r, counts(2, 0, 0), &[]).firing.is_none());
        assert_eq!(judge(&r, counts(3, 0, 0), &[]).firing, Some(Severity::Warning));
        r.critical_threshold = Some(10.0);
        assert_eq!(judge(&r, counts(12, 0, 0), &[]).firing, Some(Severity::Critical));
    }
}
