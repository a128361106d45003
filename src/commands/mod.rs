//! One module per subcommand.

mod alert_cmds;
mod check_config;
mod classify;
mod demo;
mod emerging_cmd;
mod eval;
mod labels_cmd;
mod model;
mod report;
mod searches_cmd;
mod stages;
mod store_cmds;
pub mod time_args;
mod train_head;
mod training_tokens;

use crate::cli::{Cli, Command};
use anyhow::Result;
use stagekit::StageName;
use std::process::ExitCode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::CheckConfig => check_config::run(&cli),
        Command::Demo { once } => demo::run(&cli, *once),
        Command::Ingest => one_stage(&cli, StageName::Ingest, None),
        Command::Analyze(args) => one_stage(&cli, StageName::Analyze, Some(args)),
        Command::Store => one_stage(&cli, StageName::Store, None),
        Command::Alert(args) if args.once || args.view.is_some() => alert_cmds::run(&cli, args),
        Command::Alert(_) => one_stage(&cli, StageName::Alert, None),
        Command::Serve => one_stage(&cli, StageName::Serve, None),
        Command::Run(args) => {
            let config = load_config(&cli)?;
            let plan = stages::Plan {
                stages: stages::parse_stages(&args.stages)?,
                metrics_port: config.services.run.metrics_port,
                model: Some(&args.model),
            };
            stages::run_stages(&cli, &config, plan)
        }
        Command::Classify(args) => classify::run(&cli, args),
        Command::Eval(args) => eval::run(&cli, args),
        Command::TrainHead(args) => train_head::run(&cli, args),
        Command::TrainingTokens(args) => training_tokens::run(&cli, args),
        Command::Trends(args) => store_cmds::trends(&cli, args),
        Command::Migrate => store_cmds::migrate(&cli),
        Command::Dlq { action } => store_cmds::dlq(&cli, action),
        Command::Report(args) => report::run(&cli, args),
        Command::Import(args) => crate::intake::import::run(&cli, args),
        Command::Emerging(args) => emerging_cmd::run(&cli, args),
        Command::Searches { action } => searches_cmd::run(&cli, action),
        Command::Labels { action } => labels_cmd::run(&cli, action),
    }
}

/// `citypulse <stage>`: the stage alone, with /metrics and /healthz on its own `metrics_port`.
fn one_stage(cli: &Cli, stage: StageName, model: Option<&crate::cli::ModelArgs>) -> Result<ExitCode> {
    let config = load_config(cli)?;
    let s = &config.services;
    let metrics_port = match stage {
        StageName::Ingest => s.ingest.metrics_port,
        StageName::Analyze => s.analyze.metrics_port,
        StageName::Store => s.store.metrics_port,
        StageName::Alert => s.alert.metrics_port,
        // `citypulse emerging` is the one-shot job; the service form is `run --stages emerging`.
        StageName::Serve | StageName::Emerging => 0,
    };
    stages::run_stages(cli, &config, stages::Plan { stages: vec![stage], metrics_port, model })
}

/// Loads the configuration or fails listing every problem.
pub fn load_config(cli: &Cli) -> Result<schema::config::Config> {
    schema::config::Config::load(&cli.config).map_err(|problems| anyhow::anyhow!("{}{problems}", location(cli)))
}

fn location(cli: &Cli) -> String {
    format!("in {}: ", cli.config.display())
}

/// Sets up logging from config, with `--log-format` winning.
pub fn init_logging(cli: &Cli, config: &schema::config::Config) {
    use schema::config::services::LogFormat;
    let format = cli.log_format.map_or(config.services.telemetry.log_format, |f| match f {
        crate::cli::LogFormatArg::Human => LogFormat::Human,
        crate::cli::LogFormatArg::Json => LogFormat::Json,
    });
    crate::telemetry::init_logging(&config.services.telemetry, format);
}

/// Serves /metrics and /healthz on the service's configured port (0 disables it).
pub async fn serve_metrics_if_enabled(
    config: &schema::config::Config,
    port: u16,
    health: &stagekit::Health,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    if port == 0 {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = format!("{}:{port}", config.services.telemetry.metrics_host).parse()?;
    let (_, task) = crate::telemetry::serve_metrics(addr, health.clone(), shutdown.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e} (change the service's metrics_port)"))?;
    Ok(Some(task))
}
