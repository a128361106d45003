//! The `emerging` stage (`citypulse run --stages emerging`; `citypulse emerging` runs the job once):
//! every `every_minutes` it recomputes today's report so far, and yesterday's until a run made after
//! the day ended (final) is saved. A failed run is logged, marks the stage unhealthy and
//! is tried again at the next tick; nothing else depends on it.

use crate::job::{EmergingError, Job};
use schema::config::Config;
use stagekit::StageHealth;
use std::time::Duration;
use store::{CityZone, Database, StoreError};
use tokio_util::sync::CancellationToken;

/// The stage's settings.
#[derive(Debug, Clone)]
pub struct EmergingSettings {
    pub db: Database,
    pub zone: CityZone,
    pub every: Duration,
}

impl EmergingSettings {
    pub fn from_config(config: &Config) -> Result<Self, StoreError> {
        let s = &config.services;
        Ok(EmergingSettings {
            db: Database::from_config(&s.clickhouse)?,
            zone: CityZone::new(&s.city.time_zone)?,
            every: Duration::from_secs(s.emerging.every_minutes * 60),
        })
    }
}

/// What the stage is handed.
pub struct EmergingDeps {
    pub job: Job,
    pub client: clickhouse::Client,
    pub health: StageHealth,
}

impl EmergingDeps {
    pub fn from_config(config: &Config, health: StageHealth) -> Result<Self, StoreError> {
        let client = store::client(&config.services.clickhouse);
        let db = Database::from_config(&config.services.clickhouse)?;
        let job = Job::new(client.clone(), db, config.tz(), config.services.emerging.clone());
        Ok(EmergingDeps { job, client, health })
    }
}

/// Totals of a run of the stage.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EmergingStats {
    pub reports: u64,
    pub failures: u64,
}

/// Runs until `shutdown`.
pub async fn run(
    settings: EmergingSettings,
    deps: EmergingDeps,
    shutdown: CancellationToken,
) -> Result<EmergingStats, EmergingError> {
    let EmergingDeps { job, client, health } = deps;
    let migrated = store::migrate_when_reachable(&client, &settings.db, settings.zone, &health, &shutdown).await;
    match migrated {
        Ok(true) => {}
        Ok(false) => return Ok(EmergingStats::default()),
        Err(StoreError::ClickHouse(e)) => return Err(e.into()),
        Err(e) => return Err(EmergingError::Task(e.to_string())),
    }
    let mut stats = EmergingStats::default();
    loop {
        // Shutdown interrupts a run: the report is not saved, and the next start computes it.
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return Ok(stats),
            outcome = tick(&job) => outcome,
        };
        stats.reports += outcome.saved;
        match outcome.failed.first() {
            None => health.set_ok("emerging"),
            Some(e) => {
                stats.failures += outcome.failed.len() as u64;
                health.set_unhealthy("emerging", format!("the last run failed: {e}"));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(stats),
            () = tokio::time::sleep(settings.every) => {}
        }
    }
}

/// What one tick did.
struct Tick {
    saved: u64,
    failed: Vec<EmergingError>,
}

/// Yesterday's report unless a final one is saved, then today's so far, each on its own: a
/// failure of one does not keep the other from running. Days before yesterday are not revisited
/// (after an outage longer than a day: `citypulse emerging --date D`).
async fn tick(job: &Job) -> Tick {
    let today = job.today();
    let mut out = Tick { saved: 0, failed: Vec::new() };
    let mut days = vec![today];
    if let Some(yesterday) = today.pred_opt() {
        match job.latest(yesterday).await {
            Ok(Some(r)) if r.is_final => {}
            Ok(_) => days.insert(0, yesterday),
            Err(e) => out.failed.push(e),
        }
    }
    for date in days {
        let run = async {
            let report = job.compute(date).await?;
            job.save(&report).await?;
            Ok::<_, EmergingError>(report)
        };
        match run.await {
            Ok(report) => {
                out.saved += 1;
                tracing::info!(date = %report.date, is_final = report.is_final, reported = report.groups.len(), found = report.groups_found, seconds = report.seconds, "emerging issues computed");
            }
            Err(e) => {
                tracing::warn!(%date, error = %e, "emerging-issues run failed; trying again at the next tick");
                out.failed.push(e);
            }
        }
    }
    out
}
