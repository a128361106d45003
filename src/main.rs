//! The `citypulse` binary: one command per stage plus the analysts' and operators' tools.
//!
//! - [`cli`]: the command line (clap), every subcommand and its flags.
//! - [`telemetry`]: logging, Prometheus `/metrics` + `/healthz`, SIGINT/SIGTERM → cancellation.
//! - [`commands`]: one module per subcommand; stages live in the member crates (`ingest`,
//!   `analyze`, `store`, `alert`) and talk through `schema` types and Kafka topics.

mod cli;
mod commands;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
