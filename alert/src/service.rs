//! `citypulse alert`: the stage. Every `alert.evaluate_every_ms` it evaluates the rules as of now,
//! records each event in `alert_events` before any notifier hears of it, and hands the events to
//! the notifiers. On start it reads the open alerts back and resumes deliveries a crash or a
//! shutdown left unfinished, with the same delivery ids.

use crate::deliver::RetryPolicy;
use crate::digest::{DigestPlan, RenderDigest};
use crate::engine::Engine;
use crate::event::AlertEvent;
use crate::history::History;
use crate::lifecycle::OpenAlerts;
use crate::notify::{NotifierError, Notifiers};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clickhouse::Client;
use schema::config::alerts::AlertRule;
use schema::config::Config;
use stagekit::StageHealth;
use std::collections::BTreeMap;
use std::time::Duration;
use store::{CityZone, ClickHouseError, Database, StoreError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How far back unfinished deliveries are resumed on start: older news is no longer news.
const RESUME_WINDOW_S: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Config(#[from] StoreError),
    #[error(transparent)]
    Notifier(#[from] NotifierError),
    #[error("rule terms: {0}")]
    Terms(#[from] schema::terms::TermError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("rule {rule}: {message}")]
    Rule { rule: String, message: String },
}

/// Plain values from the configuration.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub db: Database,
    pub zone: CityZone,
    pub tz: Tz,
    pub every: Duration,
    pub rules: Vec<AlertRule>,
    /// searches.toml: the scopes of `search = "name"` rules.
    pub searches: schema::config::SearchesConfig,
    pub public_url: Option<url::Url>,
    /// Which notifiers each rule names.
    pub notify: BTreeMap<String, Vec<String>>,
    /// The daily digest, when `[digest]` is configured.
    pub digest: Option<DigestPlan>,
}

impl AlertSettings {
    pub fn from_config(config: &Config) -> Result<Self, AlertError> {
        let s = &config.services;
        Ok(AlertSettings {
            db: Database::from_config(&s.clickhouse)?,
            zone: CityZone::new(&s.city.time_zone)?,
            tz: config.tz(),
            every: Duration::from_millis(s.alert.evaluate_every_ms),
            rules: config.alerts.rule.clone(),
            searches: config.searches.clone(),
            public_url: s.serve.public_url.clone(),
            notify: config.alerts.rule.iter().map(|r| (r.name.clone(), r.notify.clone())).collect(),
            digest: config
                .alerts
                .digest
                .as_ref()
                .and_then(|d| Some(DigestPlan { time: d.time_of_day()?, notify: d.notify.clone(), tz: config.tz() })),
        })
    }
}

/// What the stage is handed: the ClickHouse client, the notifiers, its health, and what renders
/// the daily digest (the report lives in the binary, which sets it).
pub struct AlertDeps {
    pub client: Client,
    pub notifiers: Notifiers,
    pub health: StageHealth,
    pub digest: Option<RenderDigest>,
}

impl AlertDeps {
    /// Notifier secrets come from the process environment.
    pub fn from_config(config: &Config, health: StageHealth) -> Result<Self, AlertError> {
        let notifiers =
            Notifiers::build(&config.alerts.notifier, |var| std::env::var(var).ok(), &RetryPolicy::default())?;
        Ok(AlertDeps { client: store::client(&config.services.clickhouse), notifiers, health, digest: None })
    }
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct AlertStats {
    pub evaluations: u64,
    pub events: u64,
    pub failed_evaluations: u64,
}

/// Runs the stage until `shutdown`.
pub async fn run(
    settings: AlertSettings,
    deps: AlertDeps,
    shutdown: CancellationToken,
) -> Result<AlertStats, AlertError> {
    let AlertDeps { client, notifiers, health, digest } = deps;
    if !store::migrate_when_reachable(&client, &settings.db, settings.zone, &health, &shutdown).await? {
        return Ok(AlertStats::default());
    }
    let history = History::new(client.clone(), settings.db.clone());
    let mut engine = engine(&settings, client)?;
    let mut open = history.open_alerts().await?;
    tracing::info!(rules = settings.rules.len(), open = open.len(), "alert engine ready");
    let deliveries_stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    resume(&settings, &history, &notifiers, &mut tasks, &deliveries_stop).await?;
    let digest = match (&settings.digest, digest) {
        (Some(plan), Some(render)) => Some(tokio::spawn(crate::digest::run(
            plan.clone(),
            render,
            notifiers.clone(),
            history.clone(),
            shutdown.clone(),
        ))),
        (Some(_), None) => {
            tracing::warn!("[digest] is configured but nothing renders the report here; no digest is sent");
            None
        }
        _ => None,
    };
    let mut stats = AlertStats::default();
    let mut tick = tokio::time::interval(settings.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        while tasks.try_join_next().is_some() {}
        let started = std::time::Instant::now();
        match evaluate(&mut engine, &history, &mut open, Utc::now()).await {
            Ok(events) => {
                health.set_ok("evaluation");
                stats.events += events.len() as u64;
                for e in &events {
                    for n in settings.notify.get(&e.rule).into_iter().flatten() {
                        notifiers.dispatch(&mut tasks, e, n, 0, Some(history.clone()), &deliveries_stop);
                    }
                }
            }
            Err(e) => {
                // ClickHouse away: the state in memory stays; the next tick tries again.
                stats.failed_evaluations += 1;
                tracing::warn!(error = %e, "evaluation failed; retrying at the next tick");
                health.set_unhealthy("evaluation", e.to_string());
            }
        }
        stats.evaluations += 1;
        metrics::histogram!("citypulse_alert_evaluation_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("citypulse_alert_firing").set(open.len() as f64);
    }
    // Deliveries in flight get their current attempt; waits between retries end at once and
    // what is unfinished is resumed on the next start.
    deliveries_stop.cancel();
    while tasks.join_next().await.is_some() {}
    if let Some(digest) = digest {
        let _ = digest.await;
    }
    Ok(stats)
}

/// The engine of `settings`' rules (the service's and the backtest's).
pub(crate) fn engine(settings: &AlertSettings, client: Client) -> Result<Engine, AlertError> {
    Engine::new(
        client,
        settings.db.clone(),
        settings.tz,
        settings.rules.clone(),
        &settings.searches,
        settings.public_url.clone(),
    )
}

/// One evaluation whose events are recorded before they are returned (and so before any
/// delivery): a crash after recording re-reads them as open, never fires them twice.
async fn evaluate(
    engine: &mut Engine,
    history: &History,
    open: &mut OpenAlerts,
    at: DateTime<Utc>,
) -> Result<Vec<AlertEvent>, AlertError> {
    let mut next = open.clone();
    let events = engine.evaluate(at, &mut next).await?;
    for e in &events {
        history.record_event(e).await?;
        metrics::counter!("citypulse_alert_events_total", "rule" => e.rule.clone(), "event" => e.event.clone())
            .increment(1);
    }
    let t = crate::window::floor_minute(at).timestamp();
    let held: Vec<String> = next.values().filter(|o| o.held_at == t).map(|o| o.alert_id.clone()).collect();
    history.record_held(&held, t).await?;
    *open = next;
    Ok(events)
}

async fn resume(
    settings: &AlertSettings,
    history: &History,
    notifiers: &Notifiers,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> Result<(), AlertError> {
    let since = Utc::now().timestamp() - RESUME_WINDOW_S;
    let pending = history.pending(since, |rule| settings.notify.get(rule).cloned().unwrap_or_default()).await?;
    if !pending.is_empty() {
        tracing::info!(deliveries = pending.len(), "resuming unfinished deliveries");
    }
    for p in pending {
        notifiers.dispatch(tasks, &p.event, &p.notifier, p.attempts, Some(history.clone()), stop);
    }
    Ok(())
}

/// `citypulse alert --once`: one evaluation as of `at`. Unless `dry_run`, the events are recorded
/// and delivered (unfinished deliveries first resumed), and this returns once every delivery has
/// ended (bounded by the retry policy). With `dry_run` nothing is written or sent.
pub async fn evaluate_once(
    settings: &AlertSettings,
    deps: AlertDeps,
    at: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<AlertEvent>, AlertError> {
    let AlertDeps { client, notifiers, .. } = deps;
    if !dry_run {
        store::migrate(&client, &settings.db, settings.zone).await?;
    }
    let history = History::new(client.clone(), settings.db.clone());
    let mut engine = engine(settings, client)?;
    let mut open = history.open_alerts().await?;
    if dry_run {
        return Ok(engine.evaluate(at, &mut open).await?);
    }
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    resume(settings, &history, &notifiers, &mut tasks, &stop).await?;
    let events = evaluate(&mut engine, &history, &mut open, at).await?;
    for e in &events {
        for n in settings.notify.get(&e.rule).into_iter().flatten() {
            notifiers.dispatch(&mut tasks, e, n, 0, Some(history.clone()), &stop);
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(events)
}
