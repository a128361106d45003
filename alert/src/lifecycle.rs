//! The life of one alert key: firing → resolved. A key fires once; while firing it is re-sent only
//! when `cooldown_minutes` have passed since the last send and it got worse (higher severity, or
//! the observed value further past the threshold); it resolves, with one message, once its
//! condition has not held for `window_minutes`.

use crate::event::{severity_of, AlertEvent};
use crate::judge::Severity;
use std::collections::BTreeMap;

/// What one evaluation does for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Fire,
    Renotify,
    Resolve,
    /// Still firing (its hold time moves on) or still quiet.
    Hold,
    Nothing,
}

impl Step {
    pub fn event(self) -> Option<&'static str> {
        match self {
            Step::Fire => Some("fired"),
            Step::Renotify => Some("renotified"),
            Step::Resolve => Some("resolved"),
            Step::Hold | Step::Nothing => None,
        }
    }
}

/// An alert that has fired and not resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    pub alert_id: String,
    /// Unix seconds of the evaluation that fired it.
    pub fired_at: i64,
    /// Evaluation time, severity and observed value of the last event sent (fired or renotified).
    pub sent_at: i64,
    pub sent_severity: Severity,
    pub sent_observed: f64,
    /// The last evaluation at which the condition held.
    pub held_at: i64,
}

impl OpenAlert {
    /// The open alert as its events left it; the last event's time counts as the last time the
    /// condition held (a restart cannot know better, and at worst resolves one window late).
    pub fn from_events(events: &[AlertEvent]) -> Option<OpenAlert> {
        let mut open: Option<OpenAlert> = None;
        let mut sorted: Vec<&AlertEvent> = events.iter().collect();
        sorted.sort_by_key(|e| (e.window.end, e.event != "fired"));
        for e in sorted {
            let at = e.window.end.timestamp();
            match e.event.as_str() {
                "resolved" => return None,
                "fired" | "renotified" => {
                    let fired_at = open.as_ref().map_or(e.fired_at.timestamp(), |o| o.fired_at);
                    open = Some(OpenAlert {
                        alert_id: e.alert_id.clone(),
                        fired_at,
                        sent_at: at,
                        sent_severity: severity_of(&e.severity),
                        sent_observed: e.observed,
                        held_at: at,
                    });
                }
                _ => {}
            }
        }
        open
    }
}

/// The step for a key at evaluation time `t` (unix seconds), given its open alert and whether the
/// condition holds now (with the severity and observed value it holds at).
pub fn step(open: Option<&OpenAlert>, holds: Option<(Severity, f64)>, t: i64, window_s: i64, cooldown_s: i64) -> Step {
    match (open, holds) {
        (None, Some(_)) => Step::Fire,
        (None, None) => Step::Nothing,
        (Some(o), Some((severity, observed))) => {
            let cooled = t - o.sent_at >= cooldown_s;
            let worse = severity > o.sent_severity || observed > o.sent_observed;
            if cooled && worse {
                Step::Renotify
            } else {
                Step::Hold
            }
        }
        (Some(o), None) if t - o.held_at >= window_s => Step::Resolve,
        (Some(_), None) => Step::Nothing,
    }
}

/// Open alerts by (rule, topic, place).
pub type OpenAlerts = BTreeMap<(String, String, String), OpenAlert>;

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> OpenAlert {
        OpenAlert {
            alert_id: "a".into(),
            fired_at: 0,
            sent_at: 0,
            sent_severity: Severity::Warning,
            sent_observed: 0.7,
            held_at: 0,
        }
    }

    #[test]
    fn fires_once_renotifies_after_cooldown_only_when_worse_and_resolves_after_a_window() {
        let (w, cool) = (3600, 3 * 3600);
        assert_eq!(step(None, Some((Severity::Warning, 0.7)), 0, w, cool), Step::Fire);
        let o = open();
        assert_eq!(step(Some(&o), Some((Severity::Warning, 0.9)), 600, w, cool), Step::Hold, "in cooldown");
        assert_eq!(step(Some(&o), Some((Severity::Warning, 0.7)), cool, w, cool), Step::Hold, "not worse");
        assert_eq!(step(Some(&o), Some((Severity::Warning, 0.8)), cool, w, cool), Step::Renotify);
        assert_eq!(step(Some(&o), Some((Severity::Critical, 0.6)), cool, w, cool), Step::Renotify);
        assert_eq!(step(Some(&o), None, w - 60, w, cool), Step::Nothing, "not yet a window without it");
        assert_eq!(step(Some(&o), None, w, w, cool), Step::Resolve);
        assert_eq!(step(None, None, w, w, cool), Step::Nothing);
    }
}
