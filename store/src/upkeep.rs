//! The `citypulse store` service's periodic duties beside consuming: watching ClickHouse
//! reachability for /healthz, and dropping expired partitions (18.16 has no TTL, so retention only
//! happens when something runs it).

use crate::ident::Database;
use crate::retention::apply_retention;
use crate::writer::Writer;
use clickhouse::Client;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Reports ClickHouse's reachability until `shutdown`: `report(None)` while healthy,
/// `report(Some(reason))` once it has been failing longer than `limit`. Probes with
/// [`Writer::probe`] every quarter of `limit` (1–10 s): without a probe an idle writer would stay
/// "healthy" however long ClickHouse is gone.
pub async fn watch_health(
    writer: Writer,
    limit: Duration,
    mut report: impl FnMut(Option<String>),
    shutdown: CancellationToken,
) {
    let probe_every = (limit / 4).clamp(Duration::from_secs(1), Duration::from_secs(10));
    let health = writer.health();
    let mut last_probe: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        if last_probe.is_none_or(|t| t.elapsed() >= probe_every) {
            writer.probe().await;
            last_probe = Some(Instant::now());
        }
        match health.failing_for() {
            Some(d) if !health.healthy(limit) => report(Some(format!("ClickHouse unreachable for {} s", d.as_secs()))),
            _ => report(None),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(probe_every.min(Duration::from_secs(1))) => {}
        }
    }
}

/// What [`run_retention`] keeps: `posts` days and trend-table days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub posts_days: u32,
    pub trends_days: u32,
    /// Pause between two runs.
    pub every: Duration,
}

/// Applies retention now and then every `r.every` until `shutdown`. A failed run is logged and
/// counted, and tried again at the next tick: retention is housekeeping, never a reason to stop
/// storing posts.
pub async fn run_retention(client: Client, db: Database, r: Retention, shutdown: CancellationToken) {
    loop {
        let today = chrono::Utc::now().date_naive();
        match apply_retention(&client, &db, today, r.posts_days, r.trends_days).await {
            Ok(report) => {
                metrics::counter!("citypulse_store_retention_dropped_partitions_total")
                    .increment(report.dropped.len() as u64);
                if !report.dropped.is_empty() {
                    tracing::info!(dropped = ?report.dropped, "retention applied");
                }
            }
            Err(e) => {
                metrics::counter!("citypulse_store_retention_errors_total").increment(1);
                tracing::warn!(error = %e, "retention failed; retrying at the next run");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(r.every) => {}
        }
    }
}
