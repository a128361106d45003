//! Runs a set of stages in one process: `citypulse run [--stages ...]`, and `citypulse ingest |
//! analyze | store | alert` as a set of one.
//!
//! Each stage is built from the configuration (its settings, and its deps: the author key, the
//! loaded model, the ClickHouse writer), gets its own cancellation token and reports to one
//! [`Health`] behind the process's one `/metrics` and `/healthz`. The stages run until
//! SIGINT/SIGTERM, until one fails, or until all have finished (a replay-only ingest ends at the end
//! of its files); then they are stopped one by one in [`StageName::DRAIN_ORDER`], each awaited
//! before the next is cancelled: ingest stops producing first, analyze finishes what it holds, the
//! store flushes last, so each stage's last output is still taken in downstream or redelivered.

use crate::cli::{Cli, ModelArgs};
use crate::telemetry;
use anyhow::{Context, Result};
use schema::author::AuthorHasher;
use schema::config::Config;
use stagekit::{Health, StageName};
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The stages `run` can start.
pub const BUILT: [StageName; 6] = StageName::DRAIN_ORDER;

/// Parses `--stages ingest,analyze,store` (any order, no repeats) into drain order.
pub fn parse_stages(names: &[String]) -> Result<Vec<StageName>> {
    if names.is_empty() {
        return Ok(BUILT.to_vec());
    }
    let mut stages = Vec::new();
    for name in names.iter().flat_map(|n| n.split(',')).filter(|n| !n.trim().is_empty()) {
        let built = BUILT.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        let stage =
            StageName::parse(name).with_context(|| format!("--stages: unknown stage {name:?} (stages: {built})"))?;
        anyhow::ensure!(BUILT.contains(&stage), "--stages: the {stage} stage is not built yet (stages: {built})");
        anyhow::ensure!(!stages.contains(&stage), "--stages: {stage} given twice");
        stages.push(stage);
    }
    anyhow::ensure!(!stages.is_empty(), "--stages: name at least one stage");
    stages.sort();
    Ok(stages)
}

/// Whether `stage` writes `posts.raw` itself: ingest, and serve when it runs the intake. Such a
/// stage pseudonymises authors (`CITYPULSE_AUTHOR_KEY`) and needs the broker.
fn produces_posts(stage: StageName, config: &Config) -> bool {
    stage == StageName::Ingest || (stage == StageName::Serve && config.sources.intake_enabled())
}

/// What `run_stages` needs besides the config.
pub struct Plan<'a> {
    pub stages: Vec<StageName>,
    /// Port of /metrics and /healthz; 0 serves none.
    pub metrics_port: u16,
    /// Command-line overrides of `[analyze]` for the analyze stage.
    pub model: Option<&'a ModelArgs>,
}

type StageFuture = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

/// A started stage: its token and its task (returning its stats, rendered), and the stats once it
/// finished on its own.
struct Running {
    name: StageName,
    token: CancellationToken,
    task: JoinHandle<Result<String>>,
    finished: Option<String>,
}

pub fn run_stages(cli: &Cli, config: &Config, plan: Plan<'_>) -> Result<ExitCode> {
    super::init_logging(cli, config);
    // Fail before anything starts when a stage's deps cannot be had.
    let hasher = plan.stages.iter().any(|s| produces_posts(*s, config)).then(AuthorHasher::from_env).transpose()?;
    let model = match plan.model {
        Some(args) => super::model::options(config, args)?,
        None => analyze::ModelOptions::from_config(&config.services.analyze),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = telemetry::shutdown_on_signals();
        let health = Health::default();
        let metrics = super::serve_metrics_if_enabled(config, plan.metrics_port, &health, &shutdown).await?;
        let result = run_stages_until(config, &plan.stages, &health, hasher, &model, true, shutdown.clone()).await;
        shutdown.cancel();
        if let Some(task) = metrics {
            let _ = task.await;
        }
        result.map(|()| ExitCode::SUCCESS)
    })
}

/// Builds and runs `stages` until `shutdown`, a stage's failure or the end of every stage, then
/// drains them in order (`citypulse demo` runs the pipeline through this too).
pub async fn run_stages_until(
    config: &Config,
    stages: &[StageName],
    health: &Health,
    hasher: Option<AuthorHasher>,
    model: &analyze::ModelOptions,
    create_topics: bool,
    shutdown: CancellationToken,
) -> Result<()> {
    for &stage in stages {
        health.stage(stage).set_unhealthy("stage", "starting");
    }
    // alert and serve (without the intake) read ClickHouse only: a process of those alone needs no
    // broker. The demo's in-process mock cluster has its topics made directly (it answers no admin
    // requests).
    let uses_kafka = |s: &StageName| matches!(s, StageName::Analyze | StageName::Store) || produces_posts(*s, config);
    if create_topics && stages.iter().any(uses_kafka) {
        stagekit::kafka::ensure_topics(&config.services.kafka).await?;
    }
    // Every stage is built (model loaded, writer made) before any starts, so a stage that
    // cannot be built leaves nothing half-started behind.
    let mut starters = Vec::new();
    for &name in stages {
        starters.push((name, build(name, config, health, hasher.clone(), model).await?));
    }
    let mut running = Vec::new();
    // Downstream first, so each stage's consumer is in place when its input starts flowing.
    for (name, start) in starters.into_iter().rev() {
        if shutdown.is_cancelled() {
            break;
        }
        let token = CancellationToken::new();
        let stage_future = start(token.clone());
        health.stage(name).set_ok("stage");
        tracing::info!(stage = %name, "stage started");
        running.push(Running { name, token, task: tokio::spawn(stage_future), finished: None });
    }
    running.sort_by_key(|r| r.name);
    let failed = supervise(&mut running, &shutdown, health).await;
    let stopped = drain(running).await;
    match failed.into_iter().chain(stopped).next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A function from the stage's token to its running future.
type Starter = Box<dyn FnOnce(CancellationToken) -> StageFuture + Send>;

/// Builds one stage's settings and deps from the config; the returned starter runs it.
async fn build(
    name: StageName,
    config: &Config,
    health: &Health,
    hasher: Option<AuthorHasher>,
    model: &analyze::ModelOptions,
) -> Result<Starter> {
    let stage_health = health.stage(name);
    Ok(match name {
        StageName::Ingest => {
            let settings = ingest::IngestSettings::from_config(config);
            let hasher = hasher.context("the ingest stage needs CITYPULSE_AUTHOR_KEY")?;
            let deps = ingest::IngestDeps { hasher, health: stage_health };
            Box::new(move |token| Box::pin(async move { render(ingest::run(settings, deps, token).await) }))
        }
        StageName::Analyze => {
            stage_health.set_unhealthy("model", "loading");
            let (opts, topics) = (model.clone(), config.topics.clone());
            let classifier = tokio::task::spawn_blocking(move || analyze::Classifier::load(&opts, &topics))
                .await
                .context("loading the classifier")?
                .context("loading the classifier")?;
            tracing::info!(backend = %classifier.backend_name(), workers = classifier.workers(), model = %classifier.model().version, "classifier ready");
            stage_health.set_ok("model");
            let settings = analyze::AnalyzeSettings::from_config(&config.services);
            let deps = analyze::AnalyzeDeps { classifier, health: stage_health };
            Box::new(move |token| Box::pin(async move { render(analyze::run(settings, deps, token).await) }))
        }
        StageName::Store => {
            let settings = store::StoreSettings::from_config(&config.services)?;
            let deps = store::StoreDeps::from_config(&config.services, stage_health)?;
            Box::new(move |token| Box::pin(async move { render(store::run(settings, deps, token).await) }))
        }
        StageName::Alert => {
            let settings = alert::AlertSettings::from_config(config)?;
            let mut deps = alert::AlertDeps::from_config(config, stage_health)?;
            deps.digest = crate::serve::digest::renderer(config)?;
            Box::new(move |token| Box::pin(async move { render(alert::run(settings, deps, token).await) }))
        }
        StageName::Emerging => {
            let settings = emerging::EmergingSettings::from_config(config)?;
            let deps = emerging::EmergingDeps::from_config(config, stage_health)?;
            Box::new(move |token| Box::pin(async move { render(emerging::run(settings, deps, token).await) }))
        }
        StageName::Serve => {
            let settings = crate::serve::ServeSettings::from_config(config)?;
            let deps = crate::serve::ServeDeps::from_config(config, stage_health, hasher).await?;
            Box::new(move |token| {
                Box::pin(async move { crate::serve::run(settings, deps, token).await.map(|s| format!("{s:?}")) })
            })
        }
    })
}

fn render<S: std::fmt::Debug, E: std::error::Error + Send + Sync + 'static>(result: Result<S, E>) -> Result<String> {
    result.map(|stats| format!("{stats:?}")).map_err(anyhow::Error::from)
}

/// Waits for a shutdown signal, a stage's failure or the end of every stage. Returns the failure,
/// if any. A stage that finishes cleanly (a replay at the end of its file) leaves the others running.
async fn supervise(running: &mut [Running], shutdown: &CancellationToken, health: &Health) -> Option<anyhow::Error> {
    while running.iter().any(|r| r.finished.is_none()) {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
        for r in running.iter_mut().filter(|r| r.finished.is_none() && r.task.is_finished()) {
            match (&mut r.task).await {
                Ok(Ok(stats)) => {
                    tracing::info!(stage = %r.name, stats, "stage finished");
                    r.finished = Some(stats);
                }
                Ok(Err(e)) => {
                    health.stage(r.name).set_unhealthy("stage", format!("failed: {e:#}"));
                    tracing::error!(stage = %r.name, error = %format!("{e:#}"), "stage failed; stopping the others");
                    r.finished = Some("failed".into());
                    return Some(e.context(format!("the {} stage failed", r.name)));
                }
                Err(e) => {
                    r.finished = Some("panicked".into());
                    return Some(anyhow::anyhow!("the {} stage panicked: {e}", r.name));
                }
            }
        }
    }
    tracing::info!("every stage has finished");
    None
}

/// Stops the stages still running in drain order, each awaited before the next is cancelled.
/// Returns the first error a stage reported while draining.
async fn drain(running: Vec<Running>) -> Option<anyhow::Error> {
    let mut first_error = None;
    for r in running {
        if let Some(stats) = r.finished {
            tracing::info!(stage = %r.name, stats, "stage stopped");
            continue;
        }
        r.token.cancel();
        match r.task.await {
            Ok(Ok(stats)) => tracing::info!(stage = %r.name, stats, "stage stopped"),
            Ok(Err(e)) => {
                tracing::error!(stage = %r.name, error = %format!("{e:#}"), "stage stopped with an error");
                first_error.get_or_insert(e.context(format!("the {} stage failed", r.name)));
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("the {} stage panicked: {e}", r.name));
            }
        }
    }
    first_error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_into_drain_order_and_refuse_what_is_not_there() {
        let s = |v: &[&str]| parse_stages(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]).unwrap(), BUILT.to_vec());
        assert_eq!(s(&["store,ingest"]).unwrap(), vec![StageName::Ingest, StageName::Store]);
        assert_eq!(s(&["analyze", "store"]).unwrap(), vec![StageName::Analyze, StageName::Store]);
        assert!(s(&["ingest,ingest"]).unwrap_err().to_string().contains("twice"));
        assert_eq!(s(&["alert,store"]).unwrap(), vec![StageName::Store, StageName::Alert]);
        assert!(s(&["stor"]).unwrap_err().to_string().contains("unknown stage \"stor\""));
    }
}
