//! `citypulse analyze`: the analyze service (posts.raw → classifier → posts.analyzed), with
//! /metrics and /healthz, until SIGINT/SIGTERM; then it drains.

use super::model::options;
use crate::cli::{Cli, ModelArgs};
use crate::telemetry;
use analyze::Classifier;
use anyhow::{Context, Result};
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &ModelArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let opts = options(&config, args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = telemetry::shutdown_on_signals();
        let health = telemetry::Health::default();
        health.set_unhealthy("model", "loading");
        let metrics =
            super::serve_metrics_if_enabled(&config, config.services.analyze.metrics_port, &health, &shutdown).await?;
        let classifier = Classifier::load(&opts, &config.topics).context("loading the classifier")?;
        tracing::info!(backend = %classifier.backend_name(), workers = classifier.workers(), model = %classifier.model().version, "classifier ready");
        health.set_ok("model");
        super::kafka_topics::ensure_topics(&config.services.kafka).await?;
        analyze::service::run(&config, classifier, shutdown.clone()).await?;
        shutdown.cancel();
        if let Some(task) = metrics {
            let _ = task.await;
        }
        Ok(ExitCode::SUCCESS)
    })
}
