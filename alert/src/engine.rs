//! One evaluation of every rule at time T: read the counts (or, for `watch_terms`, match the
//! window's posts), judge each key against its baseline, step each key's lifecycle and build the
//! events. Writes nothing and sends nothing: the service records and delivers what it returns.

use crate::event::{dashboard_url, local, stable_id, AlertEvent, BaselineJson, Evidence, Span, EVENT_VERSION};
use crate::judge::{judge, Counts, Severity, Verdict};
use crate::lifecycle::{step, OpenAlert, OpenAlerts, Step};
use crate::observe::{self, KeyCounts, PostRow, Scope};
use crate::service::AlertError;
use crate::window::Windows;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clickhouse::Client;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use schema::config::alerts::{AlertRule, RuleKind, RuleTopic};
use schema::config::SearchesConfig;
use schema::terms::TermMatcher;
use std::collections::{BTreeMap, HashSet};
use store::{ClickHouseError, Database};

/// Evidence posts per event.
pub const EVIDENCE: usize = 5;
/// Most posts of one window a `watch_terms` rule reads (newest first); a window beyond it is an
/// incident in its own right and the count saturates there.
pub const TERM_WINDOW_POSTS: u64 = 50_000;
/// Rules whose windows are read at once.
const OBSERVE_CONCURRENCY: usize = 4;

struct Compiled {
    rule: AlertRule,
    terms: Option<TermMatcher>,
    /// The ClickHouse condition of the rule's saved search (`search = "name"`).
    search: Option<String>,
}

pub struct Engine {
    client: Client,
    db: Database,
    zone: Tz,
    rules: Vec<Compiled>,
    public_url: Option<url::Url>,
    /// Keys already logged as lacking history, so the log says it once per key.
    told_insufficient: HashSet<(String, Scope)>,
}

/// What one key showed in the current window.
#[derive(Debug, Default)]
struct Observed {
    counts: KeyCounts,
    /// `watch_terms`: the matching posts and the terms they matched.
    posts: Vec<PostRow>,
    terms: Vec<String>,
}

impl Engine {
    /// Fails on a rule whose terms cannot match or whose search is not in `searches`.
    pub fn new(
        client: Client,
        db: Database,
        zone: Tz,
        rules: Vec<AlertRule>,
        searches: &SearchesConfig,
        public_url: Option<url::Url>,
    ) -> Result<Self, AlertError> {
        let rules = rules
            .into_iter()
            .map(|rule| {
                let terms = (rule.kind == RuleKind::WatchTerms).then(|| TermMatcher::new(&rule.terms)).transpose()?;
                let search = match &rule.search {
                    None => None,
                    Some(name) => {
                        let fail = |message: String| AlertError::Rule { rule: rule.name.clone(), message };
                        let found = searches.get(name).ok_or_else(|| fail(format!("unknown search {name:?}")))?;
                        Some(found.sql().map_err(|e| fail(format!("search {name:?}: {e}")))?)
                    }
                };
                Ok(Compiled { rule, terms, search })
            })
            .collect::<Result<_, AlertError>>()?;
        Ok(Engine { client, db, zone, rules, public_url, told_insufficient: HashSet::new() })
    }

    pub fn rules(&self) -> impl Iterator<Item = &AlertRule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// Evaluates every rule as of `at`, stepping `open`; returns the events, in rule order.
    pub async fn evaluate(
        &mut self,
        at: DateTime<Utc>,
        open: &mut OpenAlerts,
    ) -> Result<Vec<AlertEvent>, ClickHouseError> {
        let earliest = self.rules.iter().map(|c| Windows::for_rule(&c.rule, at).earliest()).min().unwrap_or(0);
        let data_since = observe::data_since(&self.client, &self.db, earliest).await?;
        let windows: Vec<Windows> = self.rules.iter().map(|c| Windows::for_rule(&c.rule, at)).collect();
        // The rules' reads are independent: a few at a time keep ClickHouse's cores busy while
        // one query waits on its network round trip or its single-threaded merge.
        let observed: Vec<_> = stream::iter(0..self.rules.len())
            .map(|i| self.observe(i, &windows[i], data_since))
            .buffered(OBSERVE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut events = Vec::new();
        for (i, (w, observed)) in windows.iter().zip(observed).enumerate() {
            events.extend(self.step_rule(i, w, observed, open).await?);
        }
        Ok(events)
    }

    async fn observe(
        &self,
        i: usize,
        w: &Windows,
        data_since: i64,
    ) -> Result<BTreeMap<Scope, Observed>, ClickHouseError> {
        let Compiled { rule, terms, search } = &self.rules[i];
        let search = search.as_deref();
        let Some(matcher) = terms else {
            let counts = observe::counts(&self.client, &self.db, rule, search, w, data_since).await?;
            return Ok(counts.into_iter().map(|(k, counts)| (k, Observed { counts, ..Default::default() })).collect());
        };
        let posts = observe::window_posts(&self.client, &self.db, rule, search, w, TERM_WINDOW_POSTS).await?;
        let mut by_key: BTreeMap<Scope, Observed> = BTreeMap::new();
        for post in posts {
            let matched = matcher.matched(&post.text_redacted);
            if matched.is_empty() {
                continue;
            }
            for scope in scopes_of(rule, &post) {
                let o = by_key.entry(scope).or_default();
                add(&mut o.counts.now, &post.sentiment);
                for t in &matched {
                    if !o.terms.iter().any(|x| x == t) {
                        o.terms.push((*t).to_owned());
                    }
                }
                o.posts.push(post.clone());
            }
        }
        Ok(by_key)
    }

    /// Judges every observed key and every open key of the rule, and builds the events.
    async fn step_rule(
        &mut self,
        i: usize,
        w: &Windows,
        mut observed: BTreeMap<Scope, Observed>,
        open: &mut OpenAlerts,
    ) -> Result<Vec<AlertEvent>, ClickHouseError> {
        let rule = self.rules[i].rule.clone();
        for (r, topic, place) in open.keys() {
            if *r == rule.name {
                observed.entry(Scope { topic: topic.clone(), place: place.clone() }).or_default();
            }
        }
        let mut events = Vec::new();
        for (scope, o) in observed {
            let verdict = judge(&rule, o.counts.now, &o.counts.history);
            self.tell_insufficient(&rule, &scope, &verdict, o.counts.now);
            let key = (rule.name.clone(), scope.topic.clone(), scope.place.clone());
            let holds = verdict.firing.map(|s| (s, verdict.observed));
            let cooldown = i64::from(rule.cooldown_minutes) * 60;
            let next = step(open.get(&key), holds, w.end, w.width, cooldown);
            if let Some(o) = open.get_mut(&key) {
                if holds.is_some() {
                    o.held_at = w.end;
                }
            }
            let Some(name) = next.event() else { continue };
            let severity = verdict.firing.or(open.get(&key).map(|o| o.sent_severity)).unwrap_or(Severity::Warning);
            let fired_at = open.get(&key).map_or(w.end, |o| o.fired_at);
            let alert_id = match open.get(&key) {
                Some(o) => o.alert_id.clone(),
                None => stable_id(&[&rule.name, &scope.topic, &scope.place, &w.end.to_string()]),
            };
            let evidence = match next {
                Step::Resolve => Vec::new(),
                _ => self.evidence(w, &scope, self.rules[i].search.as_deref(), o.posts).await?,
            };
            let event = self.event(
                &rule,
                w,
                &scope,
                &verdict,
                o.counts.now,
                o.terms,
                evidence,
                EventFacts { name, alert_id, severity, fired_at },
            );
            match next {
                Step::Fire | Step::Renotify => {
                    let o = open.entry(key).or_insert_with(|| OpenAlert {
                        alert_id: event.alert_id.clone(),
                        fired_at: w.end,
                        sent_at: w.end,
                        sent_severity: severity,
                        sent_observed: verdict.observed,
                        held_at: w.end,
                    });
                    (o.sent_at, o.sent_severity, o.sent_observed) = (w.end, severity, verdict.observed);
                }
                _ => {
                    open.remove(&key);
                }
            }
            events.push(event);
        }
        Ok(events)
    }

    /// Up to [`EVIDENCE`] posts: the matching posts for `watch_terms`, else read from the window.
    async fn evidence(
        &self,
        w: &Windows,
        scope: &Scope,
        search: Option<&str>,
        mut matched: Vec<PostRow>,
    ) -> Result<Vec<Evidence>, ClickHouseError> {
        let posts = if matched.is_empty() {
            observe::evidence(&self.client, &self.db, w, scope, search, EVIDENCE as u64).await?
        } else {
            matched.sort_by(|a, b| {
                b.p_negative.total_cmp(&a.p_negative).then(b.engagement.cmp(&a.engagement)).then(a.key.cmp(&b.key))
            });
            matched.truncate(EVIDENCE);
            matched
        };
        Ok(posts.iter().map(|p| Evidence::of(p, self.zone)).collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        rule: &AlertRule,
        w: &Windows,
        scope: &Scope,
        verdict: &Verdict,
        now: Counts,
        terms: Vec<String>,
        evidence: Vec<Evidence>,
        facts: EventFacts,
    ) -> AlertEvent {
        let at = |secs: i64| local(DateTime::from_timestamp(secs, 0).unwrap_or_default(), self.zone);
        let window = Span { start: at(w.start()), end: at(w.end) };
        let resolved = facts.name == "resolved";
        AlertEvent {
            version: EVENT_VERSION,
            event_id: stable_id(&[&facts.alert_id, facts.name, &w.end.to_string()]),
            alert_id: facts.alert_id,
            event: facts.name.to_owned(),
            state: if resolved { "resolved" } else { "firing" }.to_owned(),
            rule: rule.name.clone(),
            kind: rule.kind.as_str().to_owned(),
            severity: facts.severity.as_str().to_owned(),
            topic: scope.topic.clone(),
            place: scope.place.clone(),
            search: rule.search.clone(),
            dashboard_url: dashboard_url(self.public_url.as_ref(), scope, rule.search.as_deref(), &window),
            window,
            observed: verdict.observed,
            baseline: (rule.kind != RuleKind::WatchTerms).then(|| BaselineJson::new(verdict.baseline, verdict.samples)),
            threshold: rule.threshold,
            posts: now.posts,
            sentiment: now.into(),
            terms,
            evidence,
            fired_at: at(facts.fired_at),
            resolved_at: resolved.then(|| at(w.end)),
        }
    }

    fn tell_insufficient(&mut self, rule: &AlertRule, scope: &Scope, verdict: &Verdict, now: Counts) {
        if verdict.insufficient_history
            && now.posts >= i64::from(rule.min_posts)
            && self.told_insufficient.insert((rule.name.clone(), scope.clone()))
        {
            tracing::info!(
                rule = rule.name,
                topic = scope.topic,
                place = scope.place,
                samples = verdict.samples,
                "insufficient history: fewer than 3 baseline samples, the rule cannot judge this key yet"
            );
        }
    }
}

struct EventFacts {
    name: &'static str,
    alert_id: String,
    severity: Severity,
    fired_at: i64,
}

fn add(c: &mut Counts, sentiment: &str) {
    c.posts += 1;
    match sentiment {
        "negative" => c.negative += 1,
        "positive" => c.positive += 1,
        _ => c.neutral += 1,
    }
}

/// The keys a post counts in under `rule`: the same expansion as the SQL of `observe`.
fn scopes_of(rule: &AlertRule, post: &PostRow) -> Vec<Scope> {
    let topics: Vec<String> = match &rule.topic {
        _ if rule.search.is_some() => vec!["*".into()],
        Some(RuleTopic::All) => vec!["*".into()],
        Some(RuleTopic::One(t)) => vec![t.as_str().to_owned()],
        None => post.topics.clone(),
    };
    let places: Vec<String> = match (&rule.place, rule.per_place) {
        (Some(p), _) => vec![p.as_str().to_owned()],
        (None, true) => post.places.clone(),
        (None, false) => vec!["*".into()],
    };
    topics.iter().flat_map(|t| places.iter().map(move |p| Scope { topic: t.clone(), place: p.clone() })).collect()
}
