//! Shared by the commands that run the classifier: options from `[analyze]` with command-line
//! overrides, and progress lines on stderr for long inputs.

use crate::cli::{BackendArg, ModelArgs, PrecisionArg};
use analyze::ModelOptions;
use schema::config::services::{BackendKind, Precision};
use schema::config::Config;
use std::time::Instant;

pub fn options(config: &Config, args: &ModelArgs) -> anyhow::Result<ModelOptions> {
    let mut analyze = config.services.analyze.clone();
    if let Some(adapter) = &args.adapter {
        analyze.adapter = adapter.clone();
    }
    let mut opts = ModelOptions::from_config(&analyze);
    if let Some(heads) = &args.heads {
        anyhow::ensure!(
            heads.join(analyze::classifier::SENTIMENT_HEAD).is_file(),
            "--heads {}: no {} there (train-head --out {}/sentiment writes one)",
            heads.display(),
            analyze::classifier::SENTIMENT_HEAD,
            heads.display()
        );
        opts.heads_dir = heads.clone();
    }
    if let Some(b) = args.backend {
        opts.backend = match b {
            BackendArg::Candle => BackendKind::Candle,
            BackendArg::Onnx => BackendKind::Onnx,
            BackendArg::Torch => BackendKind::Torch,
        };
    }
    if let Some(p) = args.precision {
        opts.precision = match p {
            PrecisionArg::Fp32 => Precision::Fp32,
            PrecisionArg::Int8 => Precision::Int8,
        };
    }
    if let Some(t) = args.threads {
        anyhow::ensure!((1..=64).contains(&t), "--threads must be 1..=64");
        opts.threads = t;
    }
    if let Some(w) = args.workers {
        anyhow::ensure!((1..=64).contains(&w), "--workers must be 1..=64");
        opts.workers = w;
    }
    if opts.precision == Precision::Int8 && opts.resolved_backend() != BackendKind::Onnx {
        anyhow::bail!("--precision int8 needs the onnx backend");
    }
    Ok(opts)
}

/// Prints `label: done/total (rate/s)` to stderr at most once a second, and a last line at the end.
pub struct Progress {
    label: &'static str,
    total: usize,
    start: Instant,
    last: Instant,
    enabled: bool,
}

impl Progress {
    /// Progress is shown for inputs of at least 200 items.
    pub fn new(label: &'static str, total: usize) -> Self {
        let now = Instant::now();
        Progress { label, total, start: now, last: now, enabled: total >= 200 }
    }

    pub fn update(&mut self, done: usize) {
        if !self.enabled || (self.last.elapsed().as_secs_f32() < 1.0 && done < self.total) {
            return;
        }
        self.last = Instant::now();
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        eprintln!("{}: {done}/{} ({rate:.1}/s)", self.label, self.total);
    }
}
