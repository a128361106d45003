//! The `citypulse` binary: one command per stage plus the analysts' and operators' tools.
//!
//! - [`cli`]: the command line (clap), every subcommand and its flags.
//! - [`telemetry`]: logging, Prometheus `/metrics` + `/healthz`, SIGINT/SIGTERM → cancellation.
//! - [`commands`]: one module per subcommand; stages live in the member crates (`ingest`,
//!   `analyze`, `store`, `alert`) and talk through `schema` types and Kafka topics.

mod cli;
mod commands;
mod intake;
mod searches;
mod serve;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc for every Rust allocation (onnxruntime keeps its own): the
/// store's writer makes and drops ~15 small allocations per post, and glibc spent a fifth of the
/// writer's CPU freeing them (`malloc_consolidate`). Measured with `cargo bench -p store`: writer
/// CPU per 1000 new posts 5.0 → 4.3 ms, per 1000 redelivered ones 6.1 → 3.6 ms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    size_thread_pools(&cli);
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// candle and tokenizers size their thread pools from `RAYON_NUM_THREADS` when they first run, so
/// `--threads N` becomes that variable here, while the process still has one thread (setting the
/// environment later would race other threads' reads). An explicit variable wins.
fn size_thread_pools(cli: &cli::Cli) {
    let threads = match &cli.command {
        cli::Command::Analyze(m) => m.threads,
        cli::Command::Run(r) => r.model.threads,
        cli::Command::Classify(a) => a.model.threads,
        cli::Command::Eval(a) => a.model.threads,
        cli::Command::TrainHead(a) => a.model.threads,
        _ => None,
    };
    if let (Some(n), None) = (threads, std::env::var_os("RAYON_NUM_THREADS")) {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}
