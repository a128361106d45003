//! `citypulse demo`: the whole pipeline on embedded defaults. Until every stage has landed it runs
//! the parts that exist and says what is missing.

use crate::cli::Cli;
use crate::telemetry;
use anyhow::{Context, Result};
use schema::author::AuthorHasher;
use std::io::BufRead;
use std::process::ExitCode;

pub fn run(cli: &Cli) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    tracing::warn!("demo: author handles are hashed with the public development key, never use it in production");
    // The demo's posts carry pseudonyms already; the hasher is what a demo crawler would use.
    let _hasher = AuthorHasher::development();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = telemetry::shutdown_on_signals();
        let health = telemetry::Health::default();
        let (metrics_addr, metrics_task) = telemetry::serve_metrics("127.0.0.1:0".parse()?, health.clone(), shutdown.clone()).await?;
        health.set_ok("demo");
        let limits = config.services.limits.limits();
        let path = config.path(&config.demo.replay_file);
        let file = std::fs::File::open(&path).with_context(|| format!("opening the demo replay file {}", path.display()))?;
        let (mut ok, mut bad) = (0usize, 0usize);
        for line in std::io::BufReader::new(file).lines() {
            if shutdown.is_cancelled() {
                break;
            }
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            match schema::decode::<schema::Post>(line.as_bytes(), &limits) {
                Ok(post) => {
                    ok += 1;
                    metrics::counter!("citypulse_demo_posts_total", "outcome" => "decoded").increment(1);
                    tracing::debug!(key = %post.key(), "replayed");
                }
                Err(err) => {
                    bad += 1;
                    metrics::counter!("citypulse_demo_posts_total", "outcome" => "rejected").increment(1);
                    tracing::warn!(kind = err.kind(), %err, "replay line rejected");
                }
            }
        }
        println!("demo: config valid (city {}, zone {}); replay file {}: {ok} posts decoded, {bad} rejected", config.services.city.name, config.services.city.time_zone, path.display());
        println!("demo: metrics were served at http://{metrics_addr}/metrics");
        println!("demo: not built yet: classifier (#3, #4), ClickHouse store (#5), ingest to Kafka (#6), analyze service (#7), alerts and dashboards (later issues)");
        shutdown.cancel();
        let _ = metrics_task.await;
        Ok(ExitCode::SUCCESS)
    })
}
