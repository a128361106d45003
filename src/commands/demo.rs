//! `citypulse demo`: the whole pipeline on embedded defaults. Until every stage has landed it runs
//! the parts that exist — config, the replay file through the Kafka envelope, the classifier — and
//! says what is missing.

use crate::cli::Cli;
use crate::telemetry;
use analyze::{Classifier, ModelOptions};
use anyhow::{Context, Result};
use schema::author::AuthorHasher;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;

pub fn run(cli: &Cli) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    tracing::warn!("demo: author handles are hashed with the public development key; never use it in production");
    let _hasher = AuthorHasher::development();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = telemetry::shutdown_on_signals();
        let health = stagekit::Health::default();
        let (metrics_addr, metrics_task) =
            telemetry::serve_metrics("127.0.0.1:0".parse()?, health.clone(), shutdown.clone()).await?;
        health.stage(stagekit::StageName::Analyze).set_ok("demo");
        let posts = read_replay(&config)?;
        println!(
            "demo: config valid (city {}, zone {}); {} posts decoded from {}",
            config.services.city.name,
            config.services.city.time_zone,
            posts.len(),
            config.demo.replay_file.display()
        );
        let opts = ModelOptions::from_config(&config.services.analyze);
        let mut classifier = Classifier::load(&opts, &config.topics).context("loading the classifier")?;
        let texts: Vec<&str> = posts.iter().map(|p| p.text.as_str()).collect();
        let results = classifier.classify(&texts, &mut |_| {})?;
        let mut table: BTreeMap<String, [usize; 3]> = BTreeMap::new();
        for (post, r) in posts.iter().zip(&results) {
            metrics::counter!("citypulse_demo_posts_total", "sentiment" => r.sentiment.label.as_str()).increment(1);
            let row = table.entry(r.topics[0].id.to_string()).or_default();
            row[r.sentiment.label as usize] += 1;
            println!(
                "  {:<9} {:+.2} {:<18} {}",
                r.sentiment.label.as_str(),
                r.sentiment.score,
                r.topics[0].id.as_str(),
                truncate(&r.text_redacted, 70)
            );
            tracing::debug!(key = %post.key(), "classified");
        }
        println!("\n  {:<18} {:>8} {:>8} {:>8}", "topic", "negative", "neutral", "positive");
        for (topic, [neg, neu, pos]) in &table {
            println!("  {topic:<18} {neg:>8} {neu:>8} {pos:>8}");
        }
        println!(
            "\ndemo: classified with {} ({}); metrics at http://{metrics_addr}/metrics",
            classifier.backend_name(),
            classifier.model().version
        );
        println!(
            "demo: not yet in the demo: the in-process Kafka → analyze → ClickHouse pipeline (the stages exist as \
             `citypulse ingest|analyze|store`), alerts and dashboards (later issues)"
        );
        shutdown.cancel();
        let _ = metrics_task.await;
        Ok(ExitCode::SUCCESS)
    })
}

fn read_replay(config: &schema::config::Config) -> Result<Vec<schema::Post>> {
    let limits = config.services.limits.limits();
    let path = config.demo.replay_file.clone();
    let file =
        std::fs::File::open(&path).with_context(|| format!("opening the demo replay file {}", path.display()))?;
    let mut posts = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match schema::decode::<schema::Post>(line.as_bytes(), &limits) {
            Ok(post) => posts.push(post),
            Err(err) => tracing::warn!(line = i + 1, kind = err.kind(), %err, "replay line rejected"),
        }
    }
    Ok(posts)
}

fn truncate(text: &str, chars: usize) -> String {
    let mut out: String = text.chars().take(chars).collect();
    if text.chars().count() > chars {
        out.push('…');
    }
    out
}
