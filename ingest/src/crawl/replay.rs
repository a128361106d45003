//! The replay source: a JSONL file of posts in the Kafka envelope, produced at a configured rate or
//! as fast as Kafka takes them (demo, benchmarks, tests). Replayed posts keep their own `source`
//! (a recording of Mastodon posts stays Mastodon posts); the configured name labels metrics and the
//! checkpoint. The cursor is the number of lines delivered, so a restart resumes after them.

use super::Shared;
use crate::checkpoint::CheckpointError;
use crate::parse::replay::parse_line;
use crate::parse::ItemError;
use crate::producer::{InFlight, ProduceError};
use governor::{Quota, RateLimiter};
use schema::config::sources::ReplaySource;
use schema::{Limits, Post, SourceId};
use std::io::BufRead;
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The replay source's one checkpoint stream.
const STREAM: &str = "file";
/// Lines per produce batch when replaying as fast as possible: enough to keep librdkafka's
/// batches full, small enough that a checkpoint covers little work.
const FAST_BATCH: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

/// What a replay run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub produced: u64,
    pub errors: u64,
    /// Lines delivered so far in total (the cursor).
    pub lines: u64,
}

/// Replays the file from its checkpoint to the end (or until shutdown).
///
/// A reader thread reads and decodes batches while the previous batch is produced and the one
/// before it acknowledged: decoding, producing and Kafka's round trip overlap.
pub async fn run_replay(
    config: &ReplaySource,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Result<ReplaySummary, ReplayError> {
    let label = config.name.to_string();
    let path = config.path.display().to_string();
    let io = |source| ReplayError::Io { path: path.clone(), source };
    let start: u64 = shared.checkpoints.load(&config.name, STREAM)?.and_then(|c| c.parse().ok()).unwrap_or(0);
    let file = std::fs::File::open(&config.path).map_err(io)?;
    let limiter = (config.posts_per_second > 0.0).then(|| {
        let per = std::time::Duration::from_secs_f64(1.0 / config.posts_per_second.clamp(1e-3, 1e7));
        RateLimiter::direct(Quota::with_period(per).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)))
    });
    let batch_size = match config.posts_per_second {
        r if r > 0.0 => (r as usize).clamp(1, FAST_BATCH),
        _ => FAST_BATCH,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let limits = shared.limits;
    let reader = tokio::task::spawn_blocking(move || read_batches(file, start, batch_size, limits, tx));
    let mut summary = ReplaySummary { lines: start, ..Default::default() };
    tracing::info!(source = %label, path = %path, from_line = start, "replay started");
    let mut in_flight: Option<Sent> = None;
    // Lines read so far, including the batch in flight; `summary.lines` counts acknowledged ones.
    let mut next_line = start;
    'batches: loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            batch = rx.recv() => batch,
        };
        let Some(batch) = batch else { break };
        let batch = batch.map_err(io)?;
        for (line, e) in &batch.errors {
            summary.errors += 1;
            metrics::counter!("citypulse_ingest_errors_total", "source" => label.clone(), "kind" => e.kind())
                .increment(1);
            tracing::warn!(source = %label, line = next_line + line, error = %e, "replay line rejected");
        }
        if let Some(limiter) = &limiter {
            for _ in 0..batch.posts.len() {
                tokio::select! {
                    _ = shutdown.cancelled() => break 'batches,
                    _ = limiter.until_ready() => {}
                }
            }
        }
        shared.count_fetched(&label, batch.posts.len());
        let keep = super::select_posts(&shared, false, batch.posts, &label);
        let sent = shared.producer.enqueue_all(&keep).await?;
        // The previous batch was in flight while this one was read; it is checkpointed first.
        if let Some(previous) = in_flight.take() {
            if !settle(&shared, &config.name, &label, previous, &mut summary, &shutdown).await? {
                break;
            }
        }
        next_line += batch.read;
        in_flight = Some(Sent { batch: sent, posts: keep, lines: next_line });
    }
    if let Some(previous) = in_flight.take() {
        settle(&shared, &config.name, &label, previous, &mut summary, &shutdown).await?;
    }
    // The reader stops at its next send once the receiver is gone.
    drop(rx);
    reader.await.map_err(|e| io(std::io::Error::other(e.to_string())))?;
    tracing::info!(source = %label, produced = summary.produced, errors = summary.errors, "replay finished");
    Ok(summary)
}

/// Decoded lines, and the failures by line number within the batch (1-based).
struct Batch {
    posts: Vec<Post>,
    errors: Vec<(u64, ItemError)>,
    /// Lines this batch consumed.
    read: u64,
}

/// The reader thread: skips `start` lines, then sends batches until the end of the file.
fn read_batches(
    file: std::fs::File,
    start: u64,
    batch_size: usize,
    limits: Limits,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Batch>>,
) {
    let mut lines = std::io::BufReader::with_capacity(1 << 20, file).split(b'\n');
    for _ in 0..start {
        match lines.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            None => return,
        }
    }
    loop {
        let mut batch = Batch { posts: Vec::with_capacity(batch_size), errors: Vec::new(), read: 0 };
        while batch.posts.len() < batch_size {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                Some(Err(e)) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                None => break,
            };
            batch.read += 1;
            match parse_line(&line, &limits) {
                Ok(Some(post)) => batch.posts.push(post),
                Ok(None) => {}
                Err(e) => batch.errors.push((batch.read, e)),
            }
        }
        if batch.read == 0 || tx.blocking_send(Ok(batch)).is_err() {
            return;
        }
    }
}

/// A batch handed to Kafka: its acknowledgements, its posts (to send again), its last line.
struct Sent {
    batch: InFlight,
    posts: Vec<Post>,
    lines: u64,
}

/// Waits for a batch's acknowledgements, then remembers its keys and checkpoints its last line.
/// A batch Kafka did not take (the broker away longer than `delivery_timeout_ms`) is sent again
/// until it is: the replay neither stops nor skips it. False when shutdown came first (nothing is
/// checkpointed: the next run sends the batch again).
async fn settle(
    shared: &Shared,
    source: &SourceId,
    label: &str,
    sent: Sent,
    summary: &mut ReplaySummary,
    shutdown: &CancellationToken,
) -> Result<bool, ReplayError> {
    let Sent { batch, posts, lines } = sent;
    let keys: Vec<String> = batch.keys().map(str::to_owned).collect();
    if let Err(error) = batch.acknowledged().await {
        if !resend_until_acknowledged(shared, label, &posts, error, shutdown).await {
            return Ok(false);
        }
    }
    let produced = keys.len() as u64;
    {
        let mut dedup = shared.dedup.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            dedup.insert(key);
        }
    }
    shared.count_produced(label, produced);
    summary.produced += produced;
    summary.lines = lines;
    shared.checkpoints.save(source, STREAM, &lines.to_string())?;
    Ok(true)
}

/// Sends `posts` again, with backoff, until Kafka acknowledges all of them (posts it had already
/// taken are sent twice; the store collapses them by key). False on shutdown.
async fn resend_until_acknowledged(
    shared: &Shared,
    label: &str,
    posts: &[Post],
    mut error: ProduceError,
    shutdown: &CancellationToken,
) -> bool {
    let backoff = stagekit::Backoff::up_to(std::time::Duration::from_secs(30));
    for attempt in 0u32.. {
        let pause = backoff.delay(attempt);
        metrics::counter!("citypulse_ingest_produce_retries_total", "source" => label.to_owned()).increment(1);
        tracing::error!(
            source = label, %error, attempt, posts = posts.len(), ?pause,
            "replay batch not acknowledged by Kafka; sending it again until Kafka takes it"
        );
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(pause) => {}
        }
        match shared.producer.send_all(posts).await {
            Ok(()) => return true,
            Err(e) => error = e,
        }
    }
    false
}
