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
        match tick(&job).await {
            Ok(n) => {
                stats.reports += n;
                health.set_ok("emerging");
            }
            Err(e) => {
                stats.failures += 1;
                tracing::warn!(error = %e, "emerging-issues run failed; trying again at the next tick");
                health.set_unhealthy("emerging", e.to_string());
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(stats),
            () = tokio::time::sleep(settings.every) => {}
        }
    }
}

/// Yesterday's report unless a final one is saved, then today's so far. Returns the reports saved.
async fn tick(job: &Job) -> Result<u64, EmergingError> {
    let today = job.today();
    let mut saved = 0;
    if let Some(yesterday) = today.pred_opt() {
        if !job.latest(yesterday).await?.is_some_and(|r| r.is_final) {
            job.save(&job.compute(yesterday).await?).await?;
            saved += 1;
        }
    }
    let report = job.compute(today).await?;
    tracing::info!(date = %report.date, reported = report.groups.len(), found = report.groups_found, seconds = report.seconds, "emerging issues computed");
    job.save(&report).await?;
    Ok(saved + 1)
}
