//! [`run`]: the store stage's entry point (`citypulse store`, or a stage of `citypulse run`).
//! Applies the migrations (waiting for ClickHouse if it is not up yet), then consumes
//! `posts.analyzed` into ClickHouse ([`crate::consume`]) while watching ClickHouse's reachability for
//! `/healthz` and applying retention on schedule; on shutdown the consumer drains and the duties
//! stop with it.

use crate::consumer::{consume, writer_for, ConsumerSettings, RunStats};
use crate::error::{Retry, StoreError};
use crate::ident::{CityZone, Database};
use crate::upkeep::{run_retention, watch_health, Retention};
use crate::writer::Writer;
use schema::config::ServicesConfig;
use stagekit::{Backoff, StageHealth};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The store stage's settings, from citypulse.toml.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub consumer: ConsumerSettings,
    /// The city's zone, which the trend views' day and hour buckets are created in.
    pub zone: CityZone,
    /// `/healthz` turns unhealthy after ClickHouse has been unreachable this long.
    pub unhealthy_after: Duration,
    /// Scheduled retention, or `None` when it runs elsewhere.
    pub retention: Option<Retention>,
}

impl StoreSettings {
    pub fn from_config(cfg: &ServicesConfig) -> Result<Self, StoreError> {
        let retention = (cfg.store.retention_every_ms > 0).then(|| Retention {
            posts_days: cfg.clickhouse.posts_retention_days,
            trends_days: cfg.clickhouse.trends_retention_days,
            every: Duration::from_millis(cfg.store.retention_every_ms),
        });
        Ok(StoreSettings {
            consumer: ConsumerSettings::from_config(cfg),
            zone: CityZone::new(&cfg.city.time_zone)?,
            unhealthy_after: Duration::from_millis(cfg.store.unhealthy_after_ms),
            retention,
        })
    }
}

/// What the store stage is handed: its ClickHouse writer and its health.
#[derive(Clone)]
pub struct StoreDeps {
    pub writer: Writer,
    pub health: StageHealth,
}

impl StoreDeps {
    pub fn from_config(cfg: &ServicesConfig, health: StageHealth) -> Result<Self, StoreError> {
        Ok(StoreDeps { writer: writer_for(cfg)?, health })
    }
}

/// Runs the store stage until `shutdown`; returns the consumer's totals.
pub async fn run(
    settings: StoreSettings,
    deps: StoreDeps,
    shutdown: CancellationToken,
) -> Result<RunStats, StoreError> {
    let StoreDeps { writer, health } = deps;
    let (client, db) = writer.target();
    if !migrate_when_reachable(client, db, settings.zone, &health, &shutdown).await? {
        return Ok(RunStats::default());
    }
    // The duties stop when consuming stops, whether by shutdown or by an error.
    let duties = shutdown.child_token();
    let watch = tokio::spawn(watch_health(
        writer.clone(),
        settings.unhealthy_after,
        {
            let health = health.clone();
            move |problem| match problem {
                Some(reason) => health.set_unhealthy("clickhouse", reason),
                None => health.set_ok("clickhouse"),
            }
        },
        duties.clone(),
    ));
    let retention = settings.retention.map(|r| {
        let (client, db) = writer.target();
        tokio::spawn(run_retention(client.clone(), db.clone(), r, duties.clone()))
    });
    let stats = consume(settings.consumer, writer, health, shutdown).await;
    duties.cancel();
    let _ = watch.await;
    if let Some(task) = retention {
        let _ = task.await;
    }
    stats
}

/// Applies the migrations, retrying while ClickHouse is unreachable (a stage started before its
/// database waits for it, unhealthy meanwhile). False when shut down before they were applied.
/// The alert stage calls it too: either stage may be the first to reach a new database.
pub async fn migrate_when_reachable(
    client: &clickhouse::Client,
    db: &Database,
    zone: CityZone,
    health: &StageHealth,
    shutdown: &CancellationToken,
) -> Result<bool, StoreError> {
    let backoff = Backoff::up_to(Duration::from_secs(10));
    let mut attempt = 0;
    loop {
        match crate::migrate(client, db, zone).await {
            Ok(report) => {
                tracing::info!(applied = ?report.applied, "migrations up to date");
                health.set_ok("clickhouse");
                return Ok(true);
            }
            Err(StoreError::Migration { source, .. }) if source.retry() == Retry::Transient => {
                let reason = format!("cannot apply migrations yet: {source}");
                tracing::warn!(attempt, "{reason}; retrying");
                health.set_unhealthy("clickhouse", reason);
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            () = tokio::time::sleep(backoff.delay(attempt)) => {}
        }
        attempt += 1;
    }
}
