//! `citypulse.toml`: the city, Kafka, ClickHouse, limits, telemetry and each service's settings.
//! Secrets are never here: only the names of environment variables that hold them.

use super::problems::FileProblems;
use serde::Deserialize;
use std::path::PathBuf;

/// The whole of citypulse.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesConfig {
    pub city: CityConfig,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default)]
    pub ingest: IngestServiceConfig,
    #[serde(default)]
    pub analyze: AnalyzeConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub alert: AlertServiceConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub emerging: super::emerging::EmergingConfig,
}

/// The city this deployment watches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityConfig {
    /// Display name. Required.
    pub name: String,
    /// IANA time zone that defines hours, days, `--since` and report dates (e.g. `Asia/Ho_Chi_Minh`). Required.
    pub time_zone: String,
}

impl CityConfig {
    /// The parsed time zone; `validate()` guarantees it parses.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Kafka connection and topic names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// Topic of raw posts (the only place raw text lives). Default `posts.raw`.
    pub topic_raw: String,
    /// Topic of analysed posts. Default `posts.analyzed`.
    pub topic_analyzed: String,
    /// Dead-letter topic. Default `posts.dlq`.
    pub topic_dlq: String,
    /// Partitions when citypulse creates the topics. Default 6.
    pub partitions: i32,
    /// Retention of `posts.raw` when citypulse creates it, days. Default 7.
    pub raw_retention_days: u32,
    /// Consumer group of the analyzer. Default `citypulse-analyze`.
    pub analyze_group: String,
    /// Consumer group of the store writer. Default `citypulse-store`.
    pub store_group: String,
    /// Producer delivery timeout, milliseconds: one attempt at a message (librdkafka retries
    /// inside it). Default 30000.
    pub delivery_timeout_ms: u32,
    /// Longest pause between attempts at a message Kafka did not acknowledge (analysed posts, DLQ
    /// records); stages retry until it is acknowledged or they shut down, milliseconds. Default 30000.
    pub retry_max_backoff_ms: u64,
    /// Consumer session timeout: a consumer silent this long loses its partitions to the rest of
    /// its group, milliseconds. Default 10000.
    pub session_timeout_ms: u32,
    /// Consumer heartbeat interval, milliseconds; below a third of `session_timeout_ms`. Default 1000.
    pub heartbeat_interval_ms: u32,
    /// How often consumers report their lag (`citypulse_<stage>_consumer_lag_messages`),
    /// milliseconds; 0 turns the reports off. Default 5000.
    pub statistics_interval_ms: u32,
    /// How long a request to a broker may go unanswered before its connection is given up and
    /// re-made, milliseconds (librdkafka's `socket.timeout.ms`). A broker that vanishes without
    /// closing its connections (a network partition, a frozen host) is noticed after this long.
    /// Default 60000.
    pub socket_timeout_ms: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic_raw: "posts.raw".into(),
            topic_analyzed: "posts.analyzed".into(),
            topic_dlq: "posts.dlq".into(),
            partitions: 6,
            raw_retention_days: 7,
            analyze_group: "citypulse-analyze".into(),
            store_group: "citypulse-store".into(),
            delivery_timeout_ms: 30_000,
            retry_max_backoff_ms: 30_000,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 1_000,
            statistics_interval_ms: 5_000,
            socket_timeout_ms: 60_000,
        }
    }
}

/// ClickHouse connection, tables and retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint. Default `http://127.0.0.1:8123`.
    pub url: url::Url,
    /// Database. Default `citypulse`.
    pub database: String,
    /// User. Default `default`.
    pub user: String,
    /// Name of the environment variable holding the password (may be unset: empty password).
    /// Default `CITYPULSE_CLICKHOUSE_PASSWORD`.
    pub password_env: String,
    /// Stored posts are dropped by partition after this many days. Default 90.
    pub posts_retention_days: u32,
    /// Trend tables are kept this many days. Default 730.
    pub trends_retention_days: u32,
    /// Request timeout, milliseconds. Default 30000.
    pub timeout_ms: u64,
    /// A cluster in ClickHouse's `remote_servers` (replicated tables behind Distributed ones; see
    /// the README's operations section). Unset: one server. `url` is then the server this process
    /// talks to; the writer inserts there and reads its own writes back there.
    pub cluster: Option<String>,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: url::Url::parse("http://127.0.0.1:8123").expect("constant URL"),
            database: "citypulse".into(),
            user: "default".into(),
            password_env: "CITYPULSE_CLICKHOUSE_PASSWORD".into(),
            posts_retention_days: 90,
            trends_retention_days: 730,
            timeout_ms: 30_000,
            cluster: None,
        }
    }
}

/// Input limits applied by every stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest accepted Kafka message, bytes. Default 262144.
    pub max_message_bytes: usize,
    /// Largest accepted post text, bytes. Default 20000.
    pub max_text_bytes: usize,
    /// Timestamps further than this in the future are rejected, seconds. Default 3600.
    pub max_clock_skew_secs: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = crate::Limits::default();
        LimitsConfig {
            max_message_bytes: l.max_message_bytes,
            max_text_bytes: l.max_text_bytes,
            max_clock_skew_secs: l.max_clock_skew_secs,
        }
    }
}

impl LimitsConfig {
    pub fn limits(&self) -> crate::Limits {
        crate::Limits {
            max_message_bytes: self.max_message_bytes,
            max_text_bytes: self.max_text_bytes,
            max_clock_skew_secs: self.max_clock_skew_secs,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// Logging and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `human` or `json`. Default `human`.
    pub log_format: LogFormat,
    /// tracing filter directive (RUST_LOG syntax); `RUST_LOG` wins when set. Default `info`.
    pub log_level: String,
    /// Address the /metrics and /healthz listener binds to. Default `127.0.0.1`.
    pub metrics_host: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { log_format: LogFormat::Human, log_level: "info".into(), metrics_host: "127.0.0.1".into() }
    }
}

/// `citypulse run`: several stages in one process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Port of the process's one /metrics and /healthz (every stage it runs); 0 disables. Default 9100.
    pub metrics_port: u16,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { metrics_port: 9100 }
    }
}

/// `citypulse ingest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestServiceConfig {
    /// Port of /metrics and /healthz; 0 disables. Default 9101.
    pub metrics_port: u16,
    /// Where cursors are checkpointed (atomic writes). Default `state/ingest`.
    pub state_dir: PathBuf,
}

impl Default for IngestServiceConfig {
    fn default() -> Self {
        IngestServiceConfig { metrics_port: 9101, state_dir: "state/ingest".into() }
    }
}

/// Encoder backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// onnx when built with it, else candle.
    Auto,
    Candle,
    Onnx,
    /// rust-bert over libtorch (cargo feature `torch`).
    Torch,
}

/// Weight precision of the onnx backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Int8,
}

/// `citypulse analyze` and the classifier used by classify/eval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzeConfig {
    /// Port of /metrics and /healthz; 0 disables. Default 9102.
    pub metrics_port: u16,
    /// HF model folder (config.json, tokenizer.json, model.safetensors, model.onnx). Default `models/multilingual-e5-small`.
    pub model_dir: PathBuf,
    /// Folder of trained heads. Default `models/heads`.
    pub heads_dir: PathBuf,
    /// The low-rank adapter fine-tuned on our corpora (models/adapter/README.md), or `none` for the
    /// plain encoder with `model_dir` and `heads_dir`. With an adapter the classifier loads
    /// `tuned_model_dir` (the adapter merged in by scripts/fetch-model.sh, so it runs at the plain
    /// model's speed on every backend) and `tuned_heads_dir`. Default
    /// `models/adapter/e5-small-city-lora.safetensors`.
    pub adapter: PathBuf,
    /// The merged model folder scripts/fetch-model.sh builds. Default `models/multilingual-e5-small-tuned`.
    pub tuned_model_dir: PathBuf,
    /// Heads trained on the tuned encoder. Default `models/heads/tuned`.
    pub tuned_heads_dir: PathBuf,
    /// libonnxruntime path; `ORT_DYLIB_PATH` wins when set. Default `models/onnxruntime/libonnxruntime.so`.
    pub onnxruntime_path: PathBuf,
    /// `auto`, `candle`, `onnx` or `torch` (a build with `--features torch`). Default `auto`.
    pub backend: BackendKind,
    /// `fp32` or `int8` (onnx only). Default `fp32`.
    pub precision: Precision,
    /// Threads for the model, all workers together. Default 2.
    pub threads: usize,
    /// Model workers: copies of the onnx session, each on its own thread with threads / workers
    /// intra-op threads, taking batches in parallel; capped at `threads`. One session on 2 threads
    /// waits for both at every op; two sessions on one thread each keep both cores busy (uit-vsfc
    /// dev, 2 cores: fp32 +9%, int8 +41%, whose dynamic quantisation steps run single-threaded).
    /// Each worker costs ~0.4–0.5 GB more memory. candle always runs one (its thread pools are
    /// process-wide). Default 2.
    pub workers: usize,
    /// Tokens per post after which text is cut. Default 128.
    pub max_seq_tokens: usize,
    /// Token budget of one batch (posts × padded length). Default 384: on CPU, batches whose
    /// activations fit in cache ran faster than larger ones (measured 256–512 vs 4096, uit-vsfc dev).
    pub batch_max_tokens: usize,
    /// Longest a post waits for its batch to fill, milliseconds. Default 20.
    pub batch_max_wait_ms: u64,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        AnalyzeConfig {
            metrics_port: 9102,
            model_dir: "models/multilingual-e5-small".into(),
            heads_dir: "models/heads".into(),
            adapter: "models/adapter/e5-small-city-lora.safetensors".into(),
            tuned_model_dir: "models/multilingual-e5-small-tuned".into(),
            tuned_heads_dir: "models/heads/tuned".into(),
            onnxruntime_path: "models/onnxruntime/libonnxruntime.so".into(),
            backend: BackendKind::Auto,
            precision: Precision::Fp32,
            threads: 2,
            workers: 2,
            max_seq_tokens: 128,
            batch_max_tokens: 384,
            batch_max_wait_ms: 20,
        }
    }
}

/// `citypulse store`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Port of /metrics and /healthz; 0 disables. Default 9103.
    pub metrics_port: u16,
    /// Rows per insert before it is sent. Default 50000.
    pub batch_max_rows: u64,
    /// Bytes per insert before it is sent. Default 16777216.
    pub batch_max_bytes: u64,
    /// Longest a row waits before its insert is sent, milliseconds. Default 2000 (each flush costs
    /// ClickHouse a roughly fixed CPU time; see config/citypulse.toml).
    pub batch_period_ms: u64,
    /// /healthz turns unhealthy after ClickHouse has been unreachable this long, milliseconds: inserts
    /// failing with network errors, timeouts or overload, or (while idle) a `SELECT 1` probe run every
    /// quarter of this time (1–10 s) failing. Default 60000.
    pub unhealthy_after_ms: u64,
    /// Longest pause between retries of a failed insert, milliseconds. Default 30000.
    pub retry_max_backoff_ms: u64,
    /// How often the writer service drops `posts` and trend partitions past
    /// `clickhouse.posts_retention_days` / `trends_retention_days` (first run at start-up),
    /// milliseconds; 0 disables (run retention elsewhere). Default 3600000.
    pub retention_every_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            metrics_port: 9103,
            batch_max_rows: 50_000,
            batch_max_bytes: 16 * 1024 * 1024,
            batch_period_ms: 2000,
            unhealthy_after_ms: 60_000,
            retry_max_backoff_ms: 30_000,
            retention_every_ms: 3_600_000,
        }
    }
}

/// `citypulse alert`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertServiceConfig {
    /// Port of /metrics and /healthz; 0 disables. Default 9104.
    pub metrics_port: u16,
    /// How often rules are evaluated, milliseconds. Default 60000.
    pub evaluate_every_ms: u64,
}

impl Default for AlertServiceConfig {
    fn default() -> Self {
        AlertServiceConfig { metrics_port: 9104, evaluate_every_ms: 60_000 }
    }
}

/// `citypulse serve` (HTTP API, dashboard).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Where analysts reach the dashboard (`https://citypulse.example.vn`); alerts link to it.
    /// Absent: alerts carry no link.
    pub public_url: Option<url::Url>,
    /// Longest `since`..`until` an API call may span, days. Default 400.
    pub max_range_days: u32,
    /// API tokens; when any is set, every `/api/v1` call needs `Authorization: Bearer <token>`.
    pub token: Vec<ServeToken>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig { listen: "127.0.0.1:8080".into(), public_url: None, max_range_days: 400, token: Vec::new() }
    }
}

/// One API token (`[[serve.token]]`). The token itself is a secret: only the name of the
/// environment variable holding it is configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeToken {
    /// Who uses it; logged with each call (never the token).
    pub name: String,
    /// Environment variable holding the token.
    pub env: String,
    pub role: TokenRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Reads the dashboard's data.
    Viewer,
    /// Reads everything; later issues give analysts more (saved searches, corrections).
    Analyst,
}

impl ServicesConfig {
    pub fn validate(&self, p: &mut FileProblems<'_>) {
        p.check(!self.city.name.trim().is_empty(), "city.name", "must not be empty");
        self.emerging.validate(p);
        p.check(
            self.city.time_zone.parse::<chrono_tz::Tz>().is_ok(),
            "city.time_zone",
            format!("unknown time zone {:?} (use an IANA name such as Asia/Ho_Chi_Minh)", self.city.time_zone),
        );
        let k = &self.kafka;
        p.check(
            k.brokers.split(',').all(|b| {
                b.trim().rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok())
            }),
            "kafka.brokers",
            format!("{:?} is not a comma-separated list of host:port", k.brokers),
        );
        for (key, topic) in
            [("topic_raw", &k.topic_raw), ("topic_analyzed", &k.topic_analyzed), ("topic_dlq", &k.topic_dlq)]
        {
            let ok = !topic.is_empty()
                && topic.len() <= 249
                && topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            p.check(ok, format!("kafka.{key}"), format!("{topic:?} is not a valid Kafka topic name"));
        }
        p.check(k.partitions >= 1, "kafka.partitions", "must be at least 1");
        p.check(k.raw_retention_days >= 1, "kafka.raw_retention_days", "must be at least 1 day");
        p.check(k.delivery_timeout_ms >= 1, "kafka.delivery_timeout_ms", "must be at least 1");
        p.check(k.session_timeout_ms >= 1000, "kafka.session_timeout_ms", "must be at least 1000");
        p.check(k.socket_timeout_ms >= 10, "kafka.socket_timeout_ms", "must be at least 10");
        p.check(
            k.heartbeat_interval_ms >= 1 && k.heartbeat_interval_ms.saturating_mul(3) <= k.session_timeout_ms,
            "kafka.heartbeat_interval_ms",
            "must be at least 1 and at most a third of session_timeout_ms",
        );
        let c = &self.clickhouse;
        p.url(&c.url, &["http", "https"], "clickhouse.url");
        p.check(is_identifier(&c.database), "clickhouse.database", "must be an identifier ([A-Za-z_][A-Za-z0-9_]*)");
        p.check(
            c.cluster.as_deref().is_none_or(is_identifier),
            "clickhouse.cluster",
            "must be an identifier ([A-Za-z_][A-Za-z0-9_]*), the cluster's name in remote_servers",
        );
        p.check(c.posts_retention_days >= 1, "clickhouse.posts_retention_days", "must be at least 1");
        p.check(
            c.trends_retention_days >= c.posts_retention_days,
            "clickhouse.trends_retention_days",
            "must be at least posts_retention_days (trends outlive posts)",
        );
        p.check(self.limits.max_text_bytes >= 280, "limits.max_text_bytes", "must be at least 280");
        // An analysed post carries its text and, since schema 1.3, the text's search index (its
        // words twice, as written and folded): about 3.3x the text, plus the rest of the post.
        p.check(
            self.limits.max_message_bytes >= 4 * self.limits.max_text_bytes + 8192,
            "limits.max_message_bytes",
            "must be at least 4 x limits.max_text_bytes + 8192 (an analysed post carries its text and its search index)",
        );
        let a = &self.analyze;
        p.check((1..=64).contains(&a.threads), "analyze.threads", "must be 1..=64");
        p.check((1..=64).contains(&a.workers), "analyze.workers", "must be 1..=64");
        p.check(
            (8..=512).contains(&a.max_seq_tokens),
            "analyze.max_seq_tokens",
            "must be 8..=512 (the encoder's limit)",
        );
        p.check(a.batch_max_tokens >= a.max_seq_tokens, "analyze.batch_max_tokens", "must be at least max_seq_tokens");
        p.check(
            a.adapter.as_os_str() == "none" || a.adapter.extension().is_some_and(|e| e == "safetensors"),
            "analyze.adapter",
            "must be an adapter file (.safetensors) or \"none\" for the plain encoder",
        );
        p.check(self.store.batch_max_rows >= 1, "store.batch_max_rows", "must be at least 1");
        p.check(self.store.batch_period_ms >= 1, "store.batch_period_ms", "must be at least 1");
        p.check(self.store.unhealthy_after_ms >= 1000, "store.unhealthy_after_ms", "must be at least 1000");
        p.check(
            self.store.retention_every_ms == 0 || self.store.retention_every_ms >= 1000,
            "store.retention_every_ms",
            "must be 0 (off) or at least 1000",
        );
        p.check(self.alert.evaluate_every_ms >= 1000, "alert.evaluate_every_ms", "must be at least 1000");
        p.check((1..=3660).contains(&self.serve.max_range_days), "serve.max_range_days", "must be 1..=3660");
        p.check(
            self.serve.listen.parse::<std::net::SocketAddr>().is_ok(),
            "serve.listen",
            format!("{:?} is not an ip:port address", self.serve.listen),
        );
        for (i, t) in self.serve.token.iter().enumerate() {
            p.check(!t.name.trim().is_empty(), format!("serve.token[{i}].name"), "must not be empty");
            p.check(
                !t.env.trim().is_empty(),
                format!("serve.token[{i}].env"),
                "names the environment variable holding the token",
            );
        }
        p.check(
            self.telemetry.metrics_host.parse::<std::net::IpAddr>().is_ok(),
            "telemetry.metrics_host",
            "must be an IP address",
        );
    }
}

/// ClickHouse identifiers we interpolate (database, table names) must be plain words.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}
