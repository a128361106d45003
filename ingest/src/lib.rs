//! Ingest: crawls public posts from the configured sources and produces them to Kafka `posts.raw`.
//!
//! Where things live:
//! - [`parse`]: **where a post is parsed** — one pure function per source format (Mastodon statuses,
//!   Reddit listings, RSS/Atom, Jetstream events, replay JSONL) from response bytes to
//!   [`schema::Post`], with typed per-item errors.
//! - [`text`]: HTML to text, and the NFC lower-cased form that place matching uses.
//! - [`places`]: the gazetteer matcher (aliases at word boundaries → canonical place ids) and the
//!   relevance filter for sources with `require_place`.
//! - [`polite`]: per-host quotas shared by all sources, Retry-After and rate-limit headers,
//!   backoff with jitter and pausing a failing stream.
//! - [`http`]: the one HTTP client; every request takes its host's quota and honours its hints.
//! - [`checkpoint`]: cursors per stream in the state directory, atomic and durable.
//! - [`dedup`]: the bounded window of recently produced post keys (`<source>:<id>`).
//! - [`producer`]: the Kafka producer (idempotent, acks=all, lz4, back-pressure on a full queue).
//! - [`crawl`]: the loop per stream (fetch → places → filter → dedup → produce → checkpoint) and
//!   each source's stream (URLs, cursor rules); the Bluesky Jetstream and replay loops.
//! - [`run`] (here): the ingest stage's entry point: builds all of that from [`IngestSettings`] and
//!   [`IngestDeps`] and runs every enabled source until shutdown.
//!
//! Metrics (label `source`): `citypulse_ingest_fetched_posts_total`, `..._produced_posts_total`,
//! `..._filtered_posts_total` (`reason`), `..._duplicate_posts_total`, `..._errors_total` (`kind`),
//! `..._backoff_seconds`, `..._paused_total`; plus `citypulse_ingest_queue_full_waits_total`.

pub mod checkpoint;
pub mod crawl;
pub mod dedup;
pub mod http;
pub mod parse;
pub mod places;
pub mod polite;
pub mod producer;
pub mod text;

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::crawl::feed::FeedStream;
use crate::crawl::mastodon::MastodonStream;
use crate::crawl::reddit::RedditStream;
use crate::crawl::{run_stream, Shared};
use crate::dedup::DedupWindow;
use crate::http::{FetchError, Fetcher};
use crate::places::Gazetteer;
use crate::polite::{HostLimiters, QuotaSpec};
use crate::producer::{PostProducer, ProduceError};
use schema::author::AuthorHasher;
use schema::config::services::KafkaConfig;
use schema::config::{PlacesConfig, SourcesConfig};
use schema::Limits;
use stagekit::StageHealth;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why ingest could not start or a source stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Producer(#[from] ProduceError),
    #[error(transparent)]
    Http(#[from] FetchError),
    #[error(transparent)]
    Crawl(#[from] crawl::CrawlError),
    #[error(transparent)]
    Replay(#[from] crawl::replay::ReplayError),
    #[error("a crawl task failed: {0}")]
    Task(String),
}

/// Everything `run` needs, taken from the loaded configuration.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub sources: SourcesConfig,
    pub places: PlacesConfig,
    pub kafka: KafkaConfig,
    /// `[ingest] state_dir` of citypulse.toml.
    pub state_dir: PathBuf,
    pub limits: Limits,
    /// The city's time zone (`city.time_zone`).
    pub zone: chrono_tz::Tz,
    /// Quota of hosts with no `[[host_quota]]` (sources.toml `[defaults]`).
    pub default_quota: QuotaSpec,
}

impl IngestSettings {
    pub fn from_config(config: &schema::config::Config) -> Self {
        IngestSettings {
            sources: config.sources.clone(),
            places: config.places.clone(),
            kafka: config.services.kafka.clone(),
            state_dir: config.services.ingest.state_dir.clone(),
            limits: config.services.limits.limits(),
            zone: config.services.city.tz(),
            default_quota: QuotaSpec {
                requests_per_second: config.sources.defaults.requests_per_second,
                burst: config.sources.defaults.burst,
            },
        }
    }
}

/// Builds the shared parts (client, quotas, producer, checkpoints, gazetteer), reporting the
/// streams' health to `health`.
pub fn build_shared(
    settings: &IngestSettings,
    hasher: AuthorHasher,
    health: StageHealth,
) -> Result<Arc<Shared>, IngestError> {
    let limiters = HostLimiters::new(&settings.sources.host_quota, settings.default_quota);
    Ok(Arc::new(Shared {
        fetcher: Fetcher::new(&settings.sources.defaults, limiters)?,
        producer: PostProducer::new(&settings.kafka)?,
        checkpoints: Checkpoints::open(&settings.state_dir)?,
        gazetteer: Gazetteer::new(&settings.places),
        hasher,
        limits: settings.limits,
        zone: settings.zone,
        defaults: settings.sources.defaults.clone(),
        dedup: Mutex::new(DedupWindow::new(settings.sources.defaults.dedup_window_posts)),
        totals: crawl::Totals::default(),
        warned: Mutex::default(),
        health,
    }))
}

/// What the ingest stage is handed: the author key and its health.
pub struct IngestDeps {
    pub hasher: AuthorHasher,
    pub health: StageHealth,
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Crawl tasks run (one per stream: a hashtag, a subreddit, a feed, a file).
    pub streams: usize,
    /// Posts read from the sources.
    pub fetched: u64,
    /// Posts Kafka acknowledged (after the place filter and the duplicate window).
    pub produced: u64,
}

/// The ingest stage's entry point (`citypulse ingest`, or a stage of `citypulse run`): runs every
/// enabled source until `shutdown` is cancelled (or, when only replay sources are configured,
/// until they reach the end of their files). A stream that keeps failing is paused and retried,
/// never fatal; only an unreadable checkpoint or a replay error ends its task with an error, which
/// `run` returns after the others stopped.
pub async fn run(
    settings: IngestSettings,
    deps: IngestDeps,
    shutdown: CancellationToken,
) -> Result<IngestStats, IngestError> {
    deps.health.set_ok("crawlers");
    let shared = build_shared(&settings, deps.hasher, deps.health)?;
    run_with(settings.sources, shared, shutdown).await
}

/// [`run`] on already built shared parts (tests pass their own producer or state directory).
pub async fn run_with(
    sources: SourcesConfig,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Result<IngestStats, IngestError> {
    let mut tasks: JoinSet<Result<(), IngestError>> = JoinSet::new();
    for s in sources.mastodon.iter().filter(|s| s.enabled) {
        for stream in MastodonStream::from_config(s) {
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            tasks.spawn(async move { Ok(run_stream(stream, shared, shutdown).await?) });
        }
    }
    for s in sources.reddit.iter().filter(|s| s.enabled) {
        for stream in RedditStream::from_config(s) {
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            tasks.spawn(async move { Ok(run_stream(stream, shared, shutdown).await?) });
        }
    }
    for s in sources.feed.iter().filter(|s| s.enabled) {
        let (stream, shared, shutdown) = (FeedStream::from_config(s), shared.clone(), shutdown.clone());
        tasks.spawn(async move { Ok(run_stream(stream, shared, shutdown).await?) });
    }
    for s in sources.replay.iter().filter(|s| s.enabled) {
        let (s, shared, shutdown) = (s.clone(), shared.clone(), shutdown.clone());
        tasks.spawn(async move {
            crawl::replay::run_replay(&s, shared, shutdown).await?;
            Ok(())
        });
    }
    for s in sources.bluesky.iter().filter(|s| s.enabled) {
        let (s, shared, shutdown) = (s.clone(), shared.clone(), shutdown.clone());
        tasks.spawn(async move { Ok(crawl::bluesky::run_jetstream(&s, shared, shutdown).await?) });
    }
    let streams = tasks.len();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| IngestError::Task(e.to_string())).and_then(|r| r);
        if let Err(e) = result {
            tracing::error!(error = %e, "crawl task ended with an error");
            first_error.get_or_insert(e);
        }
    }
    let stats = IngestStats {
        streams,
        fetched: shared.totals.fetched.load(Ordering::Relaxed),
        produced: shared.totals.produced.load(Ordering::Relaxed),
    };
    first_error.map_or(Ok(stats), Err)
}
