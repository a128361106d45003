//! `alerts.toml`: rules evaluated on the trend tables, and where their alerts go.

use super::problems::FileProblems;
use crate::ids::{PlaceId, TopicId};
use serde::Deserialize;

/// The whole of alerts.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub rule: Vec<AlertRule>,
    #[serde(default)]
    pub notifier: Vec<Notifier>,
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Net sentiment in the window fell by more than `threshold` against the baseline.
    NetSentimentDrop,
    /// Share of negative posts in the window is above `threshold` (0..1).
    NegativeShare,
    /// Posts in the window exceed `threshold` × the baseline rate.
    VolumeSpike,
}

/// One alert rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique name, shown in the alert.
    pub name: String,
    pub kind: RuleKind,
    /// Topic watched; absent = each topic separately.
    #[serde(default)]
    pub topic: Option<TopicId>,
    /// Place watched; absent = the whole city.
    #[serde(default)]
    pub place: Option<PlaceId>,
    /// Recent window, minutes. Default 60.
    #[serde(default = "sixty")]
    pub window_minutes: u32,
    /// Baseline before the window, hours. Default 168 (a week).
    #[serde(default = "week")]
    pub baseline_hours: u32,
    pub threshold: f64,
    /// Fewer posts than this in the window never alert. Default 20.
    #[serde(default = "twenty")]
    pub min_posts: u32,
    /// After firing, the rule stays quiet this long for the same topic/place, minutes. Default 180.
    #[serde(default = "three_hours")]
    pub cooldown_minutes: u32,
    /// Notifier names.
    pub notify: Vec<String>,
}

fn sixty() -> u32 {
    60
}
fn week() -> u32 {
    168
}
fn twenty() -> u32 {
    20
}
fn three_hours() -> u32 {
    180
}

/// How an alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    Webhook,
    Email,
    /// Only the alert log (ClickHouse `alerts` table and the service log).
    Log,
}

/// One notifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
    /// Webhook: the URL alerts are POSTed to as JSON.
    #[serde(default)]
    pub url: Option<url::Url>,
    /// Email: SMTP server `host:port`.
    #[serde(default)]
    pub smtp_server: Option<String>,
    /// Email: sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// Email: recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Email: environment variables holding SMTP user and password (secrets are never in files).
    #[serde(default)]
    pub smtp_user_env: Option<String>,
    #[serde(default)]
    pub smtp_password_env: Option<String>,
}

impl AlertsConfig {
    /// Validates rules against the configured topic and place ids (skipped where those files did
    /// not parse).
    pub fn validate(&self, topics: Option<&[&str]>, places: Option<&[&str]>, p: &mut FileProblems<'_>) {
        p.unique(self.rule.iter().map(|r| r.name.as_str()), "rule name");
        p.unique(self.notifier.iter().map(|n| n.name.as_str()), "notifier name");
        let notifiers: Vec<&str> = self.notifier.iter().map(|n| n.name.as_str()).collect();
        for (i, r) in self.rule.iter().enumerate() {
            let at = |key: &str| format!("rule[{i}].{key}");
            if let (Some(t), Some(topics)) = (&r.topic, topics) {
                p.check(
                    topics.contains(&t.as_str()) || t.as_str() == "other",
                    at("topic"),
                    format!("unknown topic {:?} (not in topics.toml)", t.as_str()),
                );
            }
            if let (Some(pl), Some(places)) = (&r.place, places) {
                p.check(
                    places.contains(&pl.as_str()),
                    at("place"),
                    format!("unknown place {:?} (not in places.toml)", pl.as_str()),
                );
            }
            p.check(r.window_minutes >= 5, at("window_minutes"), "must be at least 5");
            p.check(
                r.baseline_hours * 60 > r.window_minutes,
                at("baseline_hours"),
                "baseline must be longer than the window",
            );
            let threshold_ok = r.threshold.is_finite()
                && match r.kind {
                    RuleKind::NetSentimentDrop => r.threshold > 0.0 && r.threshold <= 2.0,
                    RuleKind::NegativeShare => r.threshold > 0.0 && r.threshold < 1.0,
                    RuleKind::VolumeSpike => r.threshold > 1.0,
                };
            p.check(threshold_ok, at("threshold"), format!("{} out of range for {:?}", r.threshold, r.kind));
            p.check(!r.notify.is_empty(), at("notify"), "name at least one notifier");
            for n in &r.notify {
                p.check(notifiers.contains(&n.as_str()), at("notify"), format!("unknown notifier {n:?}"));
            }
        }
        for (i, n) in self.notifier.iter().enumerate() {
            let at = |key: &str| format!("notifier[{i}].{key}");
            match n.kind {
                NotifierKind::Webhook => match &n.url {
                    Some(url) => p.url(url, &["http", "https"], at("url")),
                    None => p.push(at("url"), "a webhook needs a url"),
                },
                NotifierKind::Email => {
                    p.check(
                        n.smtp_server.as_deref().is_some_and(|s| s.contains(':')),
                        at("smtp_server"),
                        "an email notifier needs smtp_server = \"host:port\"",
                    );
                    p.check(
                        n.from.as_deref().is_some_and(|f| f.contains('@')),
                        at("from"),
                        "an email notifier needs a from address",
                    );
                    p.check(
                        !n.to.is_empty() && n.to.iter().all(|t| t.contains('@')),
                        at("to"),
                        "an email notifier needs recipient addresses",
                    );
                }
                NotifierKind::Log => {}
            }
        }
    }
}
