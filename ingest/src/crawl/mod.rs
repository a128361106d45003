//! The crawl loop: fetch a page, tag places, filter, drop duplicates, produce, await the acks, and
//! only then checkpoint the cursor. One task per stream (a Mastodon hashtag, a subreddit, a feed);
//! the tasks share the HTTP client, the host quotas, the producer and the duplicate window.
//!
//! - [`mastodon`], [`reddit`], [`feed`]: each source's [`Stream`] (its URLs and cursor rules);
//!   [`reddit_auth`]: Reddit's bearer and app-only OAuth tokens.
//! - [`bluesky`]: Bluesky Jetstream, its own loop (a WebSocket, not a poll).
//! - [`replay`]: the JSONL replay source, its own loop (a file, not a poll).

pub mod bluesky;
pub mod feed;
pub mod mastodon;
pub mod reddit;
pub mod reddit_auth;
pub mod replay;
pub mod watermark;

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::dedup::DedupWindow;
use crate::http::{FetchError, Fetcher};
use crate::parse::{ItemError, ParseCtx, ParseError};
use crate::places::{relevance, Gazetteer, Relevance};
use crate::polite::Backoff;
use crate::producer::{PostProducer, ProduceError};
use schema::author::AuthorHasher;
use schema::config::sources::SourceDefaults;
use schema::{Limits, Post, SourceId};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What every stream task shares.
#[derive(Debug)]
pub struct Shared {
    pub fetcher: Fetcher,
    pub producer: PostProducer,
    pub checkpoints: Checkpoints,
    pub gazetteer: Gazetteer,
    pub hasher: AuthorHasher,
    pub limits: Limits,
    /// The city's time zone (feed times without a zone are read in it).
    pub zone: chrono_tz::Tz,
    pub defaults: SourceDefaults,
    pub dedup: Mutex<DedupWindow>,
    /// Totals of the run, for the stage's stats (the metrics are process-wide and labelled).
    pub totals: Totals,
    /// (source, kind) of the item errors already logged as warnings.
    pub warned: Mutex<std::collections::HashSet<(String, &'static str)>>,
    /// The ingest stage's health: a stream that keeps failing, or whose polls yield nothing but
    /// dropped items, is reported there by name.
    pub health: stagekit::StageHealth,
}

/// Posts fetched and produced since the stage started.
#[derive(Debug, Default)]
pub struct Totals {
    pub fetched: AtomicU64,
    pub produced: AtomicU64,
}

impl Shared {
    /// Counts posts read from a source (`citypulse_ingest_fetched_posts_total{source}`).
    pub fn count_fetched(&self, label: &str, posts: usize) {
        metrics::counter!("citypulse_ingest_fetched_posts_total", "source" => label.to_owned()).increment(posts as u64);
        self.totals.fetched.fetch_add(posts as u64, Ordering::Relaxed);
    }

    /// Counts a dropped item (`citypulse_ingest_errors_total{source, kind}`) and says so: a warning
    /// the first time a source drops an item for this reason (a feed yielding nothing, private
    /// posts in a timeline), debug lines after that, so a steady trickle does not flood the log.
    pub fn item_dropped(&self, label: &str, error: &ItemError) {
        let kind = error.kind();
        metrics::counter!("citypulse_ingest_errors_total", "source" => label.to_owned(), "kind" => kind).increment(1);
        let first = self.warned.lock().map(|mut w| w.insert((label.to_owned(), kind))).unwrap_or(false);
        if first {
            tracing::warn!(source = label, kind, %error, "item dropped (said once per source and reason; citypulse_ingest_errors_total counts every one)");
        } else {
            tracing::debug!(source = label, kind, %error, "item dropped");
        }
    }

    /// Counts posts published with their fetch time because the source gave no readable date
    /// (`citypulse_ingest_estimated_time_total{source}`), with a warning the first time per source.
    pub fn count_estimated(&self, label: &str, posts: &[Post]) {
        let n = posts.iter().filter(|p| p.created_at_estimated).count();
        if n == 0 {
            return;
        }
        metrics::counter!("citypulse_ingest_estimated_time_total", "source" => label.to_owned()).increment(n as u64);
        let first = self.warned.lock().map(|mut w| w.insert((label.to_owned(), "estimated_time"))).unwrap_or(false);
        if first {
            tracing::warn!(source = label, posts = n, "items without a readable date kept with their fetch time, marked created_at_estimated and left out of trends and alerts (said once per source; citypulse_ingest_estimated_time_total counts every one)");
        }
    }

    /// Counts posts Kafka acknowledged (`citypulse_ingest_produced_posts_total{source}`).
    pub fn count_produced(&self, label: &str, posts: u64) {
        metrics::counter!("citypulse_ingest_produced_posts_total", "source" => label.to_owned()).increment(posts);
        self.totals.produced.fetch_add(posts, Ordering::Relaxed);
    }

    pub fn ctx<'a>(&'a self, source: &'a SourceId) -> ParseCtx<'a> {
        ParseCtx { source, hasher: &self.hasher, limits: &self.limits, fetched_at: chrono::Utc::now(), zone: self.zone }
    }
}

/// One fetched page, parsed.
#[derive(Debug, Default)]
pub struct Page {
    pub posts: Vec<Post>,
    pub errors: Vec<ItemError>,
    /// The cursor once this page is in Kafka; `None` keeps the current one.
    pub cursor: Option<String>,
    /// More pages are waiting now: fetch again without sleeping.
    pub more: bool,
}

/// Why one step of a stream failed; every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

impl StepError {
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Fetch(e) => e.kind(),
            StepError::Parse(e) => e.kind(),
            StepError::Produce(_) => "produce",
        }
    }
}

/// A stream cannot start (its checkpoint is unreadable).
#[derive(Debug, thiserror::Error)]
#[error("stream {source_id}/{stream}: {error}")]
pub struct CrawlError {
    /// The source's name (`source` would be taken by thiserror as the error's cause).
    pub source_id: String,
    pub stream: String,
    pub error: CheckpointError,
}

/// One cursor's worth of a source: how to fetch the page after a cursor.
pub trait Stream: Send {
    fn source(&self) -> &SourceId;
    /// Names the checkpoint within the source (`tag:saigon`, `r/saigon`, `feed`).
    fn name(&self) -> &str;
    fn require_place(&self) -> bool;
    fn poll_interval(&self) -> Duration;
    fn fetch(&mut self, shared: &Shared, cursor: Option<&str>) -> impl Future<Output = Result<Page, StepError>> + Send;
    /// The last fetched page is in Kafka and its cursor saved. Streams that remember more than the
    /// cursor (a feed's ETag) commit it here, so a failed delivery is never "not modified" later.
    fn delivered(&mut self) {}
}

/// Runs one stream until `shutdown`. A fetch or produce in flight when shutdown comes finishes
/// (produce) or is abandoned (fetch); the cursor is never saved past what Kafka acknowledged.
pub async fn run_stream<S: Stream>(
    mut stream: S,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Result<(), CrawlError> {
    let source = stream.source().clone();
    let name = stream.name().to_owned();
    let crawl_error = |error| CrawlError { source_id: source.to_string(), stream: name.clone(), error };
    let mut cursor = shared.checkpoints.load(&source, &name).map_err(crawl_error)?;
    let mut backoff = Backoff::from_defaults(&shared.defaults);
    let label = source.to_string();
    let mut watch = StreamHealth::new(&shared, &label, &name);
    tracing::info!(source = %source, stream = %name, cursor = ?cursor, "stream started");
    loop {
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => break,
            page = stream.fetch(&shared, cursor.as_deref()) => page,
        };
        let outcome = match fetched {
            Ok(page) => deliver(&shared, &stream, page, &label).await,
            Err(e) => Err(e),
        };
        let wait = match outcome {
            Ok((next, more, only_errors)) => {
                backoff.on_success();
                watch.polled(only_errors);
                metrics::gauge!("citypulse_ingest_backoff_seconds", "source" => label.clone()).set(0.0);
                if let Some(next) = next {
                    if let Err(e) = shared.checkpoints.save(&source, &name, &next) {
                        // The page is in Kafka; a stale file only means re-fetching it after a crash.
                        metrics::counter!("citypulse_ingest_errors_total", "source" => label.clone(), "kind" => "checkpoint").increment(1);
                        tracing::error!(source = %source, stream = %name, error = %e, "checkpoint not saved");
                    }
                    cursor = Some(next);
                }
                stream.delivered();
                if more {
                    continue;
                }
                stream.poll_interval()
            }
            Err(e) => {
                let delay = backoff.on_failure(match &e {
                    StepError::Fetch(f) => f.retry_hint(),
                    _ => None,
                });
                metrics::counter!("citypulse_ingest_errors_total", "source" => label.clone(), "kind" => e.kind())
                    .increment(1);
                metrics::gauge!("citypulse_ingest_backoff_seconds", "source" => label.clone())
                    .set(delay.wait.as_secs_f64());
                if delay.paused {
                    watch.paused(&e, delay.wait);
                    metrics::counter!("citypulse_ingest_paused_total", "source" => label.clone()).increment(1);
                    tracing::warn!(source = %source, stream = %name, error = %e, pause_ms = delay.wait.as_millis() as u64, "stream keeps failing; paused");
                } else {
                    tracing::warn!(source = %source, stream = %name, error = %e, wait_ms = delay.wait.as_millis() as u64, "step failed; backing off");
                }
                delay.wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(source = %source, stream = %name, "stream stopped");
    Ok(())
}

/// What `/healthz` says about one stream: unhealthy while it is paused after repeated failures,
/// or after `pause_after_failures` polls in a row gave only items that had to be dropped (a feed
/// whose every item is unreadable looks alive to the backoff, but yields nothing).
struct StreamHealth<'a> {
    shared: &'a Shared,
    component: String,
    only_errors: u32,
    reported: bool,
}

impl<'a> StreamHealth<'a> {
    fn new(shared: &'a Shared, label: &str, stream: &str) -> Self {
        StreamHealth { shared, component: format!("source {label}/{stream}"), only_errors: 0, reported: false }
    }

    fn polled(&mut self, only_errors: bool) {
        self.only_errors = if only_errors { self.only_errors + 1 } else { 0 };
        if self.only_errors >= self.shared.defaults.pause_after_failures {
            let why = format!("the last {} polls gave only items that had to be dropped", self.only_errors);
            self.shared.health.set_unhealthy(&self.component, why);
            self.reported = true;
        } else if self.reported && !only_errors {
            self.shared.health.set_ok(&self.component);
            self.reported = false;
        }
    }

    fn paused(&mut self, error: &StepError, pause: Duration) {
        let why = format!("failing, paused for {} s: {error}", pause.as_secs());
        self.shared.health.set_unhealthy(&self.component, why);
        self.reported = true;
    }
}

/// Tags, filters and produces one page. Returns the cursor to save, whether more is waiting, and
/// whether the page held nothing but dropped items.
async fn deliver<S: Stream>(
    shared: &Shared,
    stream: &S,
    page: Page,
    label: &str,
) -> Result<(Option<String>, bool, bool), StepError> {
    let only_errors = page.posts.is_empty() && !page.errors.is_empty();
    shared.count_fetched(label, page.posts.len());
    for e in &page.errors {
        shared.item_dropped(label, e);
    }
    let keep = select_posts(shared, stream.require_place(), page.posts, label);
    shared.producer.send_all(&keep).await?;
    let mut dedup = shared.dedup.lock().unwrap_or_else(|e| e.into_inner());
    for post in &keep {
        dedup.insert(post.key());
    }
    drop(dedup);
    shared.count_produced(label, keep.len() as u64);
    shared.count_estimated(label, &keep);
    Ok((page.cursor, page.more, only_errors))
}

/// Places, the relevance filter and the duplicate window.
pub fn select_posts(shared: &Shared, require_place: bool, posts: Vec<Post>, label: &str) -> Vec<Post> {
    let dedup = shared.dedup.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen_in_page = std::collections::HashSet::new();
    let mut keep = Vec::with_capacity(posts.len());
    let (mut filtered, mut duplicates) = (0u64, 0u64);
    for mut post in posts {
        // Parsers leave places empty; a replayed post keeps the places it was recorded with.
        if post.places.is_empty() {
            post.places = shared.gazetteer.places_in(&post.text);
        }
        if relevance(require_place, &post.places) == Relevance::NoPlace {
            filtered += 1;
            continue;
        }
        let key = post.key();
        if dedup.contains(&key) || !seen_in_page.insert(key) {
            duplicates += 1;
            continue;
        }
        keep.push(post);
    }
    metrics::counter!("citypulse_ingest_filtered_posts_total", "source" => label.to_owned(), "reason" => "no_place")
        .increment(filtered);
    metrics::counter!("citypulse_ingest_duplicate_posts_total", "source" => label.to_owned()).increment(duplicates);
    keep
}
