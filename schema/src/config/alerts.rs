//! `alerts.toml`: rules evaluated on the stored posts, and where their alerts go.

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
    /// The daily digest: the day before's report, e-mailed every morning.
    #[serde(default)]
    pub digest: Option<Digest>,
}

/// `[digest]`: when the day before's report is sent, and through which (email) notifiers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    /// Time of day in the city's zone, `HH:MM`.
    pub time: String,
    /// Email notifier names.
    pub notify: Vec<String>,
    /// The report's language: `vi` (default) or `en`.
    #[serde(default = "vi")]
    pub lang: String,
}

fn vi() -> String {
    "vi".into()
}

impl Digest {
    /// The time of day; `None` when `time` is not `HH:MM`.
    pub fn time_of_day(&self) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(self.time.trim(), "%H:%M").ok()
    }
}

/// How an email notifier talks to its SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must be offered (the default; port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted network (port 25).
    Plain,
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Net sentiment ((positive − negative) / posts) in the window fell by `threshold` or more
    /// below the baseline median.
    NetSentimentDrop,
    /// Share of negative posts in the window is at least `threshold` (0..1) and unusual.
    NegativeShare,
    /// Posts in the window are at least `threshold` × the baseline median.
    VolumeSpike,
    /// At least `threshold` posts in the window contain one of `terms`.
    WatchTerms,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::NetSentimentDrop => "net_sentiment_drop",
            RuleKind::NegativeShare => "negative_share",
            RuleKind::VolumeSpike => "volume_spike",
            RuleKind::WatchTerms => "watch_terms",
        }
    }

    /// Whether the observed value is a count (spread floor 1.0) rather than a share (0.02).
    pub fn counts_posts(self) -> bool {
        matches!(self, RuleKind::VolumeSpike | RuleKind::WatchTerms)
    }
}

/// Which earlier windows form a rule's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// The same window at the same time of week: rush hours and weekends compare with themselves.
    #[default]
    Weekly,
    /// The same window at the same time of day.
    Daily,
    /// Every earlier window of the baseline, back to back.
    None,
}

impl Seasonality {
    /// Length of one season, minutes; `None` for back-to-back windows.
    pub fn period_minutes(self) -> Option<u32> {
        match self {
            Seasonality::Weekly => Some(7 * 24 * 60),
            Seasonality::Daily => Some(24 * 60),
            Seasonality::None => None,
        }
    }
}

/// The topic a rule watches: one topic, all posts together (`"*"`), or (absent) each topic as its
/// own alert key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum RuleTopic {
    All,
    One(TopicId),
}

impl TryFrom<String> for RuleTopic {
    type Error = crate::ids::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s == "*" {
            return Ok(RuleTopic::All);
        }
        TopicId::new(s).map(RuleTopic::One)
    }
}

/// One alert rule. An alert key is (rule, topic, place).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique name, shown in the alert.
    pub name: String,
    pub kind: RuleKind,
    /// `"flooding"`, `"*"` (all posts together) or absent (each topic its own key).
    #[serde(default)]
    pub topic: Option<RuleTopic>,
    /// Place watched; absent = the whole city (unless `per_place`).
    #[serde(default)]
    pub place: Option<PlaceId>,
    /// A saved search (`searches.toml`) as the scope instead of a topic: the rule counts the posts
    /// the search matches.
    #[serde(default)]
    pub search: Option<String>,
    /// Each place its own key. Posts without a place then count in no key.
    #[serde(default)]
    pub per_place: bool,
    /// Recent window `[T − window, T)`, minutes, T the evaluation time floored to the minute.
    /// Default 60.
    #[serde(default = "sixty")]
    pub window_minutes: u32,
    /// How far back baseline samples are taken, hours. Default 672 (four weeks).
    #[serde(default = "four_weeks")]
    pub baseline_hours: u32,
    #[serde(default)]
    pub seasonality: Seasonality,
    pub threshold: f64,
    /// Severity `critical` once the observed value reaches this; absent = always `warning`.
    #[serde(default)]
    pub critical_threshold: Option<f64>,
    /// Fewer posts than this in the window never alert (not used by `watch_terms`). Default 20.
    #[serde(default = "twenty")]
    pub min_posts: u32,
    /// How many spreads past the baseline median the value must be. Default 3.0.
    #[serde(default = "three")]
    pub min_deviation: f64,
    /// Floor of the spread (1.4826 × MAD): default 1.0 for counts, 0.02 for shares.
    #[serde(default)]
    pub min_spread: Option<f64>,
    /// `watch_terms`: words or phrases (see `schema::terms`).
    #[serde(default)]
    pub terms: Vec<String>,
    /// While firing, a re-send waits this long and needs the alert to have got worse, minutes.
    /// Default 180.
    #[serde(default = "three_hours")]
    pub cooldown_minutes: u32,
    /// Notifier names.
    pub notify: Vec<String>,
}

impl AlertRule {
    pub fn min_spread(&self) -> f64 {
        self.min_spread.unwrap_or(if self.kind.counts_posts() { 1.0 } else { 0.02 })
    }
}

fn sixty() -> u32 {
    60
}
fn four_weeks() -> u32 {
    672
}
fn twenty() -> u32 {
    20
}
fn three() -> f64 {
    3.0
}
fn three_hours() -> u32 {
    180
}

/// How an alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    Webhook,
    /// A Slack incoming webhook (`url`): a message with the numbers, the posts and the link.
    Slack,
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
    /// Email: `starttls` (default), `tls` or `plain`.
    #[serde(default)]
    pub smtp_security: SmtpSecurity,
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
    /// Webhook: the environment variable holding the signing secret (`X-Citypulse-Signature`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Attempts per event before it is `failed`. Default 5.
    #[serde(default = "five")]
    pub max_attempts: u32,
}

fn five() -> u32 {
    5
}

impl AlertsConfig {
    /// Validates rules against the configured topic and place ids (skipped where those files did
    /// not parse).
    pub fn validate(
        &self,
        topics: Option<&[&str]>,
        places: Option<&[&str]>,
        searches: Option<&[&str]>,
        p: &mut FileProblems<'_>,
    ) {
        p.unique(self.rule.iter().map(|r| r.name.as_str()), "rule name");
        p.unique(self.notifier.iter().map(|n| n.name.as_str()), "notifier name");
        let notifiers: Vec<&str> = self.notifier.iter().map(|n| n.name.as_str()).collect();
        for (i, r) in self.rule.iter().enumerate() {
            let at = |key: &str| format!("rule[{i}].{key}");
            if let (Some(RuleTopic::One(t)), Some(topics)) = (&r.topic, topics) {
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
            if let Some(s) = &r.search {
                p.check(r.topic.is_none(), at("search"), "search and topic exclude each other");
                // Only searches.toml's: one saved through the API may be deleted under the rule.
                p.check(
                    searches.is_none_or(|known| known.contains(&s.as_str())),
                    at("search"),
                    format!("unknown search {s:?} (not in searches.toml)"),
                );
            }
            p.check(r.window_minutes >= 5, at("window_minutes"), "must be at least 5");
            validate_baseline(r, &at, p);
            let in_range = |v: f64| {
                v.is_finite()
                    && match r.kind {
                        RuleKind::NetSentimentDrop => v > 0.0 && v <= 2.0,
                        RuleKind::NegativeShare => v > 0.0 && v < 1.0,
                        RuleKind::VolumeSpike => v > 1.0,
                        RuleKind::WatchTerms => v >= 1.0 && v.fract() == 0.0,
                    }
            };
            let range = match r.kind {
                RuleKind::WatchTerms => "a whole number of posts, at least 1",
                RuleKind::NetSentimentDrop => "in (0, 2]",
                RuleKind::NegativeShare => "in (0, 1)",
                RuleKind::VolumeSpike => "above 1",
            };
            p.check(
                in_range(r.threshold),
                at("threshold"),
                format!("{} for {}: must be {range}", r.threshold, r.kind.as_str()),
            );
            if let Some(c) = r.critical_threshold {
                // For every kind a larger observed value is worse.
                p.check(
                    in_range(c) && c >= r.threshold,
                    at("critical_threshold"),
                    format!("{c}: must be {range} and at least threshold"),
                );
            }
            p.check(r.min_deviation.is_finite() && r.min_deviation >= 0.0, at("min_deviation"), "must be ≥ 0");
            p.check(r.min_spread().is_finite() && r.min_spread() > 0.0, at("min_spread"), "must be > 0");
            p.check(!(r.per_place && r.place.is_some()), at("per_place"), "per_place and place exclude each other");
            if let Err(e) = crate::terms::TermMatcher::new(&r.terms) {
                p.check(r.terms.is_empty(), at("terms"), e.to_string());
            }
            let needs_terms = r.kind == RuleKind::WatchTerms;
            p.check(
                needs_terms == r.terms.iter().any(|t| !t.trim().is_empty()),
                at("terms"),
                if needs_terms { "watch_terms needs terms" } else { "terms are only for watch_terms" },
            );
            p.check(!r.notify.is_empty(), at("notify"), "name at least one notifier");
            for n in &r.notify {
                p.check(notifiers.contains(&n.as_str()), at("notify"), format!("unknown notifier {n:?}"));
            }
        }
        for (i, n) in self.notifier.iter().enumerate() {
            let at = |key: &str| format!("notifier[{i}].{key}");
            match n.kind {
                NotifierKind::Webhook | NotifierKind::Slack => match &n.url {
                    Some(url) => p.url(url, &["http", "https"], at("url")),
                    None => p.push(at("url"), "a webhook or slack notifier needs a url"),
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
            p.check(
                n.secret_env.is_none() || n.kind == NotifierKind::Webhook,
                at("secret_env"),
                "only a webhook signs what it sends",
            );
            p.check((1..=20).contains(&n.max_attempts), at("max_attempts"), "must be 1..=20");
            p.check(
                n.kind == NotifierKind::Email
                    || (n.smtp_server.is_none()
                        && n.from.is_none()
                        && n.to.is_empty()
                        && n.smtp_user_env.is_none()
                        && n.smtp_password_env.is_none()),
                at("smtp_server"),
                "smtp_server, from, to and smtp_*_env are only for an email notifier",
            );
            p.check(
                n.smtp_user_env.is_some() == n.smtp_password_env.is_some(),
                at("smtp_user_env"),
                "give both smtp_user_env and smtp_password_env, or neither",
            );
        }
        if let Some(d) = &self.digest {
            self.validate_digest(d, p);
        }
    }

    fn validate_digest(&self, d: &Digest, p: &mut FileProblems<'_>) {
        p.check(d.time_of_day().is_some(), "digest.time", format!("{:?}: use HH:MM, e.g. \"07:30\"", d.time));
        p.check(d.lang == "vi" || d.lang == "en", "digest.lang", "vi or en");
        p.check(!d.notify.is_empty(), "digest.notify", "name at least one email notifier");
        for name in &d.notify {
            match self.notifier.iter().find(|n| &n.name == name) {
                None => p.push("digest.notify", format!("unknown notifier {name:?}")),
                Some(n) => p.check(
                    n.kind == NotifierKind::Email,
                    "digest.notify",
                    format!("{name:?} is not an email notifier (the digest is an e-mail)"),
                ),
            }
        }
    }
}

/// The baseline must hold at least three seasons (or three earlier windows): a median of fewer is
/// no baseline at all.
fn validate_baseline(r: &AlertRule, at: &dyn Fn(&str) -> String, p: &mut FileProblems<'_>) {
    let baseline = u64::from(r.baseline_hours) * 60;
    let period = u64::from(r.seasonality.period_minutes().unwrap_or(r.window_minutes));
    p.check(
        baseline >= 3 * period,
        at("baseline_hours"),
        format!(
            "{} hours hold fewer than 3 {:?} periods; use at least {}",
            r.baseline_hours,
            r.seasonality,
            (3 * period).div_ceil(60)
        ),
    );
    if let Some(season) = r.seasonality.period_minutes() {
        p.check(r.window_minutes < season, at("window_minutes"), "must be shorter than the season");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(toml: &str) -> Vec<String> {
        let config: AlertsConfig = toml::from_str(toml).expect("parse");
        let mut all = super::super::problems::Problems::default();
        config.validate(Some(&["flooding"]), Some(&["district_7"]), Some(&[]), &mut all.file("alerts.toml"));
        all.0.iter().map(ToString::to_string).collect()
    }

    const LOG: &str = "[[notifier]]\nname = \"log\"\nkind = \"log\"\n";

    #[test]
    fn new_keys_parse_with_their_defaults() {
        let c: AlertsConfig = toml::from_str(&format!(
            "[[rule]]\nname = \"all\"\nkind = \"volume_spike\"\ntopic = \"*\"\nper_place = true\nthreshold = 3.0\nnotify = [\"log\"]\n{LOG}"
        ))
        .expect("parse");
        let r = &c.rule[0];
        assert_eq!(r.topic, Some(RuleTopic::All));
        assert!(r.per_place);
        assert_eq!(
            (r.baseline_hours, r.seasonality, r.min_deviation, r.min_spread()),
            (672, Seasonality::Weekly, 3.0, 1.0)
        );
        assert_eq!(c.notifier[0].max_attempts, 5);
    }

    #[test]
    fn check_config_names_each_bad_rule() {
        let rule = |extra: &str| format!("[[rule]]\nname = \"r\"\nnotify = [\"log\"]\n{extra}\n{LOG}");
        let cases = [
            ("kind = \"watch_terms\"\nthreshold = 3.0", "watch_terms needs terms"),
            ("kind = \"watch_terms\"\nthreshold = 2.5\nterms = [\"ngập\"]", "a whole number of posts"),
            ("kind = \"watch_terms\"\nthreshold = 2\nterms = [\"ngập\", \" \"]", "terms"),
            ("kind = \"negative_share\"\nthreshold = 0.5\nbaseline_hours = 168", "fewer than 3"),
            ("kind = \"negative_share\"\nthreshold = 0.5\nseasonality = \"none\"\nbaseline_hours = 2", "fewer than 3"),
            ("kind = \"negative_share\"\nthreshold = 0.5\ncritical_threshold = 0.4", "critical_threshold"),
        ];
        for (extra, want) in cases {
            let found = problems(&rule(extra));
            assert!(found.iter().any(|p| p.contains(want)), "{extra}: {found:?}");
        }
        assert!(toml::from_str::<AlertsConfig>(&rule("kind = \"sentiment_trend\"\nthreshold = 1.0")).is_err());
        let signed_log = format!("{}secret_env = \"X\"\n", rule("kind = \"volume_spike\"\nthreshold = 3.0"));
        assert!(problems(&signed_log).iter().any(|p| p.contains("only a webhook signs")), "{signed_log}");
        assert!(problems(&rule("kind = \"volume_spike\"\nthreshold = 3.0")).is_empty());
    }

    #[test]
    fn check_config_names_a_bad_digest() {
        const MAIL: &str = "[[notifier]]\nname = \"office_mail\"\nkind = \"email\"\nsmtp_server = \"mail.example.vn:587\"\nfrom = \"citypulse@example.vn\"\nto = [\"office@example.vn\"]\n";
        let config = |digest: &str| format!("{LOG}{MAIL}[digest]\n{digest}\n");
        assert!(problems(&config("time = \"07:30\"\nnotify = [\"office_mail\"]")).is_empty());
        let cases = [
            ("time = \"7h30\"\nnotify = [\"office_mail\"]", "digest.time"),
            ("time = \"07:30\"\nnotify = [\"log\"]", "not an email notifier"),
            ("time = \"07:30\"\nnotify = [\"pager\"]", "unknown notifier"),
            ("time = \"07:30\"\nnotify = [\"office_mail\"]\nlang = \"fr\"", "digest.lang"),
        ];
        for (digest, want) in cases {
            let found = problems(&config(digest));
            assert!(found.iter().any(|p| p.contains(want)), "{digest}: {found:?}");
        }
        let half_login = format!("{MAIL}smtp_user_env = \"SMTP_USER\"\n");
        assert!(problems(&half_login).iter().any(|p| p.contains("both smtp_user_env")), "{half_login}");
        let stray = format!("{LOG}to = [\"a@b.vn\"]\n");
        assert!(problems(&stray).iter().any(|p| p.contains("only for an email notifier")), "{stray}");
    }
}
