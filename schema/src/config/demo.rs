//! `demo.toml`: what `citypulse demo` runs on its embedded defaults (in-process Kafka mock cluster,
//! a ClickHouse child process, the replay source).

use super::problems::FileProblems;
use serde::Deserialize;
use std::path::PathBuf;

/// The whole of demo.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// JSONL posts replayed into the pipeline.
    pub replay_file: PathBuf,
    /// Replay rate, posts per second; 0 = as fast as possible. Default 0.
    #[serde(default)]
    pub posts_per_second: f64,
    /// ClickHouse HTTP port of the demo's own server. Default 18124.
    #[serde(default = "ch_port")]
    pub clickhouse_http_port: u16,
    /// Where the demo keeps its ClickHouse data and logs. Default `.local/demo`.
    #[serde(default = "demo_dir")]
    pub work_dir: PathBuf,
    /// The demo's alert rules and notifiers (its `demo_receiver` webhook is pointed at a receiver
    /// inside the demo). Default `config/demo/alerts.toml`.
    #[serde(default = "demo_alerts")]
    pub alerts_file: PathBuf,
    /// Port of the dashboard the demo serves. Default 18080.
    #[serde(default = "serve_port")]
    pub serve_port: u16,
}

fn demo_alerts() -> PathBuf {
    "config/demo/alerts.toml".into()
}
fn serve_port() -> u16 {
    18080
}

fn ch_port() -> u16 {
    18124
}
fn demo_dir() -> PathBuf {
    ".local/demo".into()
}

impl DemoConfig {
    pub fn validate(&self, p: &mut FileProblems<'_>) {
        p.check(!self.replay_file.as_os_str().is_empty(), "replay_file", "must name a JSONL file");
        let ok = self.posts_per_second.is_finite() && self.posts_per_second >= 0.0;
        p.check(ok, "posts_per_second", "must be 0 or a positive rate");
        p.check(
            (1024..65535).contains(&self.clickhouse_http_port),
            "clickhouse_http_port",
            "must be 1024..65534 (the native port is the next one)",
        );
        p.check(self.serve_port >= 1024, "serve_port", "must be at least 1024");
    }
}
