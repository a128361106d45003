//! Command-line definition. Every command reads `./config` unless `--config DIR` is given.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "citypulse",
    version,
    about = "What a city's people are saying: crawl public posts, tag topic and sentiment, trend and alert."
)]
pub struct Cli {
    /// Configuration folder (citypulse.toml, sources.toml, places.toml, topics.toml, alerts.toml, demo.toml).
    #[arg(long, global = true, default_value = "config", env = "CITYPULSE_CONFIG")]
    pub config: PathBuf,
    /// Log format; overrides telemetry.log_format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Crawl the configured sources into Kafka `posts.raw` (service).
    Ingest,
    /// Classify posts from `posts.raw` into `posts.analyzed` (service).
    Analyze(ModelArgs),
    /// Write `posts.analyzed` into ClickHouse (service).
    Store,
    /// Evaluate alert rules and notify (service); `--once` evaluates once; `history` lists alerts.
    Alert(AlertArgs),
    /// HTTP JSON API and dashboard (service).
    Serve,
    /// Any set of stages in one process against the configured Kafka and ClickHouse, with one
    /// /metrics and /healthz on run.metrics_port; Ctrl-C drains them in order.
    Run(RunArgs),
    /// The whole pipeline on embedded defaults: in-process Kafka, a ClickHouse child process, the
    /// shipped sample; then the week's trends, the alerts, and the dashboard until Ctrl-C.
    Demo {
        /// Exit after printing instead of serving the dashboard.
        #[arg(long)]
        once: bool,
    },
    /// Classify text lines or Post JSONL; one JSON line out per line in.
    Classify(ClassifyArgs),
    /// Measure the classifier on a labelled TSV (text, sentiment, topic).
    Eval(EvalArgs),
    /// Train a sentiment or topic head on labelled TSV files.
    TrainHead(TrainHeadArgs),
    /// Write labelled TSV files as the model's token ids (JSON lines) for scripts/train-adapter.sh,
    /// so the adapter trains on exactly what the classifier sees.
    TrainingTokens(TrainingTokensArgs),
    /// Trend tables from ClickHouse.
    Trends(TrendsArgs),
    /// Apply ClickHouse migrations.
    Migrate,
    /// Inspect and replay the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// The daily report: one self-contained HTML file (or PDF) of the day's picture.
    Report(ReportArgs),
    /// Validate the configuration; exits non-zero listing every problem.
    CheckConfig,
    /// Import a first-party channel's records (CSV or JSONL) with the intake's checks: every record
    /// accepted, duplicate or rejected; resumable after an interruption.
    Import(ImportArgs),
    /// Emerging issues: group the day's posts no topic claims by meaning and report the groups that
    /// are new or growing (saved for the API and dashboard); `--propose N` writes group N as a
    /// proposed topic block for a person to review.
    Emerging(EmergingArgs),
    /// Saved searches (searches.toml and those saved through the API): list them, show one's
    /// series, try a query, or index the posts stored before searches existed.
    Searches {
        #[command(subcommand)]
        action: SearchesAction,
    },
    /// Analysts' corrections of the classifier (made on the dashboard or through the API): list
    /// them, revoke one, or export them as labelled TSV for `train-head`.
    Labels {
        #[command(subcommand)]
        action: LabelsAction,
    },
}

/// `citypulse alert`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub view: Option<AlertView>,
    /// Evaluate the rules once and exit (after the deliveries end) instead of running the service.
    #[arg(long)]
    pub once: bool,
    /// Evaluation time for --once (default now): 30m, 7d, 2026-11-20 08:00 (city time) or RFC 3339.
    #[arg(long, requires = "once")]
    pub at: Option<String>,
    /// With --once: write and send nothing, only print what would fire.
    #[arg(long, requires = "once")]
    pub dry_run: bool,
    /// Output of --once: a table, or one JSON event per line (nothing when nothing fired).
    #[arg(long, value_enum, default_value = "table", requires = "once")]
    pub format: ListFormat,
}

#[derive(Debug, Subcommand)]
pub enum AlertView {
    /// Replay the rules over stored history (writes and sends nothing): what would have fired,
    /// when, and how often each rule would have paged.
    Backtest {
        /// 30d, 2026-11-01, RFC 3339 …
        #[arg(long, default_value = "30d")]
        since: String,
        /// Default now.
        #[arg(long)]
        until: Option<String>,
        /// Time between evaluations: 5m, 15m, 1h.
        #[arg(long, default_value = "15m")]
        step: String,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Send a clearly marked test event through one notifier and print the outcome.
    TestNotify {
        /// The notifier's name in alerts.toml.
        name: String,
    },
    /// Send the daily digest of a day now through [digest].notify, even if it was sent
    /// already, and print each notifier's outcome.
    Digest {
        /// The day, YYYY-MM-DD (default: yesterday in the city's zone).
        #[arg(long)]
        date: Option<String>,
    },
    /// Alerts fired since a time, newest first, with their state and delivery outcomes.
    History {
        /// 7d, 12h, 2026-11-20, 2026-11-20 08:00 or RFC 3339.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only alerts in this state.
        #[arg(long, value_enum)]
        state: Option<AlertStateArg>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertStateArg {
    Firing,
    Resolved,
}

impl AlertStateArg {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStateArg::Firing => "firing",
            AlertStateArg::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Candle,
    Onnx,
    /// rust-bert over libtorch: a build with `--features torch` (scripts/fetch-libtorch.sh).
    Torch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    Fp32,
    Int8,
}

/// `citypulse run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stages to run, comma-separated (default: every built stage: ingest,analyze,store,alert).
    #[arg(long, value_delimiter = ',')]
    pub stages: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Encoder selection shared by classify, eval, analyze, run and train-head.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Encoder backend (default: onnx when built with it, else candle).
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Weight precision (onnx only).
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Model threads, all workers together.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Model workers taking batches in parallel, threads / workers each (onnx only; capped at threads).
    #[arg(long)]
    pub workers: Option<usize>,
    /// The fine-tuned encoder's adapter, or `none` for the plain encoder and its heads
    /// (default: analyze.adapter).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// A folder of heads (`sentiment/head.json`, `topic/head.json`) to run instead of the
    /// configured ones, e.g. heads retrained with analysts' corrections.
    #[arg(long)]
    pub heads: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Input file of text lines or Post JSON lines (default: stdin).
    #[arg(long)]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Labelled TSV with a header: text and any of sentiment, topic.
    #[arg(long)]
    pub data: PathBuf,
    /// One JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also measure the plain encoder with its heads and print both side by side.
    #[arg(long)]
    pub compare_plain: bool,
    /// Also measure this folder of heads (e.g. retrained with analysts' corrections) and print
    /// the configured heads (before) and these (after) side by side.
    #[arg(long, value_name = "DIR", conflicts_with = "compare_plain")]
    pub compare_heads: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    Sentiment,
    Topic,
}

#[derive(Debug, Args)]
pub struct TrainHeadArgs {
    #[arg(long, value_enum)]
    pub task: TaskArg,
    /// Labelled TSV files (repeatable).
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Output folder, e.g. models/heads/sentiment.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Training epochs.
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    /// Hidden units of the MLP head; 0 trains a linear head.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Class weights at this power of full balancing (0 none, 0.5 square root, 1 full).
    #[arg(long, default_value_t = 0.5)]
    pub class_weight_power: f64,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `citypulse training-tokens`.
#[derive(Debug, Args)]
pub struct TrainingTokensArgs {
    /// Labelled TSV files (repeatable), with a sentiment or topic column or both.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Output JSON lines: one header line naming the files, then one line per row.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ByArg {
    Topic,
    Place,
    Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GranularityArg {
    Hour,
    Day,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct TrendsArgs {
    #[command(subcommand)]
    pub view: Option<TrendsView>,
    /// Start: a duration back from now (7d, 12h) or a date/time in the city's zone.
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// End (default: now).
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value = "topic")]
    pub by: ByArg,
    #[arg(long, value_enum, default_value = "day")]
    pub granularity: GranularityArg,
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub sentiment: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
}

#[derive(Debug, Subcommand)]
pub enum TrendsView {
    /// The posts behind a number.
    TopPosts {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        sentiment: Option<String>,
        #[arg(long, default_value = "1d")]
        since: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Recent DLQ entries.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One entry in full.
    Show { offset: i64 },
    /// Send entries through again once the cause is fixed: store-stage entries are written to
    /// ClickHouse again; analyzer-stage entries are re-read from posts.raw at their offset (while
    /// it is retained) and produced to posts.raw again.
    Replay {
        /// Only entries of this stage.
        #[arg(long)]
        stage: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file: `.csv` (a header naming id, text, created_at, and optionally place, category,
    /// author) or `.jsonl` / `.ndjson` (one record object per line).
    pub file: PathBuf,
    /// The `[[intake]]` channel the records belong to (their source).
    #[arg(long)]
    pub channel: String,
    /// Also write every rejected record's number, id and reason here (JSON lines; appended on resume).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Records per batch sent to Kafka and recorded in intake_seen.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Ignore an earlier run's progress and read the file from its first record (what was
    /// imported already comes back as duplicates).
    #[arg(long)]
    pub from_start: bool,
}

#[derive(Debug, Subcommand)]
pub enum SearchesAction {
    /// Every saved search, from searches.toml and from the API.
    List,
    /// A search's volume and sentiment per bucket: a saved one by name, or `--query` to try one.
    Trends {
        /// The saved search (omit with --query).
        name: Option<String>,
        /// A query to try without saving it, e.g. '(ngập OR "triều cường") NOT "tin giả"'.
        #[arg(long)]
        query: Option<String>,
        /// Start: a duration back from now (30d, 12h) or a date/time in the city's zone.
        #[arg(long, default_value = "30d")]
        since: String,
        /// End (default: now).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "day")]
        granularity: GranularityArg,
    },
    /// Give the posts stored before migration 008 their search index (run with the store stopped).
    Reindex {
        /// Run although posts were stored in the last two minutes (a store seems to be running).
        #[arg(long)]
        while_storing: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabelsAction {
    /// The live corrections, newest first (`--revoked` adds the revoked ones).
    List {
        #[arg(long)]
        revoked: bool,
    },
    /// Take back a correction by its id (`labels list` shows them); it stays listed as revoked.
    Revoke {
        id: String,
        /// Who revokes it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Write the live corrections of one task as labelled TSV (text, the label, and where each
    /// came from): `train-head --data FILE` trains on them and names them in its provenance.
    Export {
        #[arg(long, value_enum)]
        task: TaskArg,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct EmergingArgs {
    /// The day, YYYY-MM-DD in the city's time zone (default: today so far).
    #[arg(long)]
    pub date: Option<String>,
    /// Print the report as JSON (the API's answer) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show the day's saved report instead of computing it again.
    #[arg(long)]
    pub saved: bool,
    /// Write the proposed topic block of reported group N (its rank) to emerging.proposals_dir.
    #[arg(long, value_name = "N")]
    pub propose: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The day, YYYY-MM-DD in the city's time zone (default: yesterday).
    #[arg(long)]
    pub date: Option<String>,
    /// Output file (default: citypulse-report-<date>.<html|pdf> in the current folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Language of the report.
    #[arg(long, value_enum, default_value = "vi")]
    pub lang: ReportLang,
    /// html: one self-contained file; pdf: that file printed by headless chromium.
    #[arg(long, value_enum, default_value = "html")]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportLang {
    Vi,
    En,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Pdf,
}
