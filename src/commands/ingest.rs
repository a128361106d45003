//! `citypulse ingest`: the crawlers (crate `ingest`) with /metrics and /healthz until
//! SIGINT/SIGTERM. Needs `CITYPULSE_AUTHOR_KEY`.

use crate::cli::Cli;
use crate::telemetry;
use anyhow::{Context, Result};
use schema::author::AuthorHasher;
use std::process::ExitCode;

pub fn run(cli: &Cli) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let hasher = AuthorHasher::from_env()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = telemetry::shutdown_on_signals();
        let health = telemetry::Health::default();
        let metrics =
            super::serve_metrics_if_enabled(&config, config.services.ingest.metrics_port, &health, &shutdown).await?;
        super::kafka_topics::ensure_topics(&config.services.kafka).await?;
        health.set_ok("ingest");
        let settings = ingest::IngestSettings::from_config(&config);
        let result = ingest::run(settings, hasher, shutdown.clone()).await;
        shutdown.cancel();
        if let Some(task) = metrics {
            let _ = task.await;
        }
        result?;
        Ok(ExitCode::SUCCESS)
    })
}
