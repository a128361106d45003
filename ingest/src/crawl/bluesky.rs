//! Bluesky Jetstream: a WebSocket of events (`wantedCollections=app.bsky.feed.post`), resumed with
//! `cursor=<time_us>` after a disconnect or restart.
//!
//! Events are gathered into batches (by count or every second); a batch is produced and
//! acknowledged before its last `time_us` is checkpointed, so a reconnect replays from there:
//! at-least-once, the overlap caught by the duplicate window. Connects take the host's quota and
//! back off like any failing stream.

use super::{select_posts, CrawlError, Shared};
use crate::parse::jetstream::parse_event;
use crate::polite::Backoff;
use crate::producer::ProduceError;
use futures_util::StreamExt;
use schema::config::sources::BlueskySource;
use schema::Post;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const STREAM: &str = "jetstream";
/// Posts per batch before it is produced.
const BATCH_POSTS: usize = 500;
/// Longest an event waits before its batch is produced and checkpointed.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("connect timed out")]
    Timeout,
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

impl SessionError {
    fn kind(&self) -> &'static str {
        match self {
            SessionError::Ws(_) => "websocket",
            SessionError::Timeout => "timeout",
            SessionError::Produce(_) => "produce",
        }
    }
}

/// Runs one Jetstream source until `shutdown`.
pub async fn run_jetstream(
    config: &BlueskySource,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Result<(), CrawlError> {
    let label = config.name.to_string();
    let saved = shared.checkpoints.load(&config.name, STREAM).map_err(|error| CrawlError {
        source_id: label.clone(),
        stream: STREAM.into(),
        error,
    })?;
    let mut session =
        Session { config, shared: &shared, label: label.clone(), cursor: saved.and_then(|c| c.parse().ok()) };
    let mut backoff = Backoff::from_defaults(&shared.defaults);
    while !shutdown.is_cancelled() {
        let outcome = session.run_once(&shutdown).await;
        let wait = match outcome {
            Ok(()) if shutdown.is_cancelled() => break,
            // The server closed cleanly: reconnect soon, politely.
            Ok(()) => {
                backoff.on_success();
                Duration::from_millis(shared.defaults.backoff_initial_ms)
            }
            Err(e) => {
                let delay = backoff.on_failure(None);
                metrics::counter!("citypulse_ingest_errors_total", "source" => label.clone(), "kind" => e.kind())
                    .increment(1);
                tracing::warn!(source = %label, error = %e, wait_ms = delay.wait.as_millis() as u64, paused = delay.paused, "jetstream session failed");
                delay.wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    Ok(())
}

struct Session<'a> {
    config: &'a BlueskySource,
    shared: &'a Shared,
    label: String,
    /// `time_us` of the last event whose batch Kafka acknowledged.
    cursor: Option<i64>,
}

impl Session<'_> {
    fn url(&self) -> url::Url {
        let mut url = self.config.url.clone();
        url.query_pairs_mut().append_pair("wantedCollections", "app.bsky.feed.post");
        if let Some(c) = self.cursor {
            url.query_pairs_mut().append_pair("cursor", &c.to_string());
        }
        url
    }

    /// One connection: read until it closes, fails, or shutdown (then flush and return Ok).
    async fn run_once(&mut self, shutdown: &CancellationToken) -> Result<(), SessionError> {
        let url = self.url();
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = self.shared.fetcher.limiters().acquire(&url) => {}
        }
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(self.shared.limits.max_message_bytes))
            .max_frame_size(Some(self.shared.limits.max_message_bytes));
        let timeout = Duration::from_millis(self.shared.defaults.request_timeout_ms);
        let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), true);
        let (mut ws, _) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = tokio::time::timeout(timeout, connect) => r.map_err(|_| SessionError::Timeout)??,
        };
        tracing::info!(source = %self.label, cursor = ?self.cursor, "jetstream connected");
        let mut batch: Vec<Post> = Vec::new();
        let mut last_time: Option<i64> = None;
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            let frame = tokio::select! {
                _ = shutdown.cancelled() => None,
                _ = tick.tick() => {
                    self.flush(&mut batch, last_time).await?;
                    continue;
                }
                msg = ws.next() => match msg {
                    None => None,
                    Some(Err(e)) => {
                        self.flush(&mut batch, last_time).await?;
                        return Err(e.into());
                    }
                    Some(Ok(Message::Text(t))) => Some(t.as_bytes().to_vec()),
                    Some(Ok(Message::Binary(b))) => Some(b.to_vec()),
                    // Pings are answered by tungstenite; a close frame ends the stream next.
                    Some(Ok(_)) => continue,
                },
            };
            let Some(frame) = frame else {
                self.flush(&mut batch, last_time).await?;
                return Ok(());
            };
            match parse_event(&frame, &self.shared.ctx(&self.config.name)) {
                Ok(event) => {
                    last_time = Some(last_time.map_or(event.time_us, |t| t.max(event.time_us)));
                    match event.post {
                        Some(Ok(post)) => batch.push(post),
                        Some(Err(e)) => self.shared.item_dropped(&self.label, &e),
                        None => {}
                    }
                }
                Err(e) => self.count_error(e.kind()),
            }
            if batch.len() >= BATCH_POSTS {
                self.flush(&mut batch, last_time).await?;
            }
        }
    }

    fn count_error(&self, kind: &'static str) {
        metrics::counter!("citypulse_ingest_errors_total", "source" => self.label.clone(), "kind" => kind).increment(1);
    }

    /// Produces the batch, then checkpoints the newest `time_us` read.
    async fn flush(&mut self, batch: &mut Vec<Post>, last_time: Option<i64>) -> Result<(), SessionError> {
        let posts = std::mem::take(batch);
        self.shared.count_fetched(&self.label, posts.len());
        let keep = select_posts(self.shared, self.config.require_place, posts, &self.label);
        self.shared.producer.send_all(&keep).await?;
        {
            let mut dedup = self.shared.dedup.lock().unwrap_or_else(|e| e.into_inner());
            for post in &keep {
                dedup.insert(post.key());
            }
        }
        self.shared.count_produced(&self.label, keep.len() as u64);
        if let Some(t) = last_time.filter(|t| self.cursor.is_none_or(|c| *t > c)) {
            if let Err(e) = self.shared.checkpoints.save(&self.config.name, STREAM, &t.to_string()) {
                self.count_error("checkpoint");
                tracing::error!(source = %self.label, error = %e, "checkpoint not saved");
            }
            self.cursor = Some(t);
        }
        Ok(())
    }
}
