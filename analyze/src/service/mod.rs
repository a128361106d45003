//! `citypulse analyze`: the classifier behind a Kafka consumer group, at least once.
//!
//! ```text
//! consumer task ──Pending──▶ batcher window ──one batch when a model can take it──▶ model threads
//!  decode, redact, detect      (length-sorted,          (one per worker: forward passes    │
//!  language, tokenise          token budget, max wait)   and heads only)                   │
//!      ▲   decode errors → posts.dlq                                                        │
//!      └──── store offset (partition order) ◀── produce posts.analyzed, acked ◀──results────┘
//! ```
//! - [`offsets`]: the offset that may be stored per partition when posts finish out of order.
//! - [`batcher`]: the pending window and how it is cut into batches.
//!
//! Offsets are stored (`enable.auto.offset.store=false`) only after the analysed post or the DLQ
//! record was acknowledged by Kafka, so a crash redelivers instead of losing. Nothing after this
//! stage carries raw text: the output, the DLQ and the logs hold redacted text only.

pub mod batcher;
pub mod offsets;

use crate::classifier::{prepare_text, Classifier, Labels, PreparedText};
use crate::tokenize::PostTokenizer;
use offsets::OffsetTracker;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};
use schema::config::Config;
use schema::{AnalyzedPost, DecodeError, DlqRecord, Limits, ModelInfo, Post, Stage};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the model thread stopped: {0}")]
    Model(String),
}

/// How many batches' worth of tokens the pending window holds: enough that batches cut from the
/// length-sorted window pad about as little as a fully sorted input (measured in
/// benches/analyze_throughput.sh), few enough that a post waits only a few batches.
const WINDOW_BATCHES: usize = 16;

/// A received post waiting for the model, its text already prepared and tokenised.
pub struct Pending {
    partition: i32,
    offset: i64,
    /// The partition's assignment epoch when the post was received ([`OffsetTracker::start`]).
    epoch: u64,
    post: Post,
    prepared: PreparedText,
    received: std::time::Instant,
}

impl batcher::Tokens for Pending {
    fn token_count(&self) -> usize {
        self.prepared.tokens.len()
    }
}

/// Forgets revoked partitions so their in-flight posts are neither stored nor published by us
/// (the new owner gets them again: at-least-once).
struct RebalanceContext {
    tracker: Arc<Mutex<OffsetTracker>>,
}

impl ClientContext for RebalanceContext {
    /// Consumer lag per partition from librdkafka's statistics (`statistics.interval.ms`); -1
    /// (unknown) is skipped, e.g. for partitions this instance does not own.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!("citypulse_analyze_consumer_lag", "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if let Ok(mut t) = self.tracker.lock() {
                list.elements().iter().for_each(|e| t.forget(e.partition()));
            }
            tracing::info!(partitions = list.count(), "partitions revoked");
        }
    }
}

type AnalyzeConsumer = StreamConsumer<RebalanceContext>;

/// Runs until `shutdown`, then drains: in-flight posts are finished and their offsets committed.
pub async fn run(config: &Config, classifier: Classifier, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let kafka = &config.services.kafka;
    let analyze = &config.services.analyze;
    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let consumer: Arc<AnalyzeConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", &kafka.analyze_group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("statistics.interval.ms", "5000")
            .create_with_context(RebalanceContext { tracker: tracker.clone() })?,
    );
    consumer.subscribe(&[&kafka.topic_raw])?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", kafka.delivery_timeout_ms.to_string())
        .create()?;
    let out = Output {
        producer,
        consumer: consumer.clone(),
        tracker: tracker.clone(),
        topic_raw: kafka.topic_raw.clone(),
        topic_analyzed: kafka.topic_analyzed.clone(),
        topic_dlq: kafka.topic_dlq.clone(),
        model: classifier.model().clone(),
    };
    let tokenizer = classifier.tokenizer().clone();
    let limits = config.services.limits.limits();

    let (pending_tx, pending_rx) = mpsc::channel::<Pending>(256);
    // One batch waits while the model workers run theirs: batches are cut as late as possible,
    // from the fullest window.
    let (batch_tx, batch_rx) = mpsc::channel::<Vec<Pending>>(1);
    let workers = classifier.into_workers();
    let (result_tx, mut result_rx) = mpsc::channel::<ModelResult>(2 * workers.len());
    let window = batcher::Limits {
        batch_tokens: analyze.batch_max_tokens,
        window_tokens: WINDOW_BATCHES * analyze.batch_max_tokens,
        max_wait: Duration::from_millis(analyze.batch_max_wait_ms),
    };
    let batcher = tokio::spawn(batcher::run(pending_rx, batch_tx, window));
    // A model thread that panics stops the whole service (drain, then an error), as a lone one
    // did, instead of leaving the others running at part capacity with its batch's offsets stuck.
    let stop = shutdown.child_token();
    let shared = ModelShared {
        tracker: tracker.clone(),
        batches: Arc::new(Mutex::new(batch_rx)),
        results: result_tx,
        stop: stop.clone(),
    };
    let models: Vec<_> =
        workers.into_iter().enumerate().map(|(i, c)| spawn_model_thread(i, c, shared.clone())).collect();
    drop(shared);
    let writer = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(result) = result_rx.recv().await {
                out.write(result).await;
            }
        })
    };
    tracing::info!(topic = %kafka.topic_raw, group = %kafka.analyze_group, "analyze consuming");
    consume(&consumer, &tokenizer, &limits, &out, &pending_tx, &stop).await;

    // Drain in order: no new input, the batcher flushes, the model finishes, outputs are acked.
    drop(pending_tx);
    let _ = batcher.await;
    let panicked =
        tokio::task::spawn_blocking(move || models.into_iter().map(|m| m.join()).filter(Result::is_err).count())
            .await
            .unwrap_or(1);
    let _ = writer.await;
    if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::warn!(%err, "final offset commit failed; the last posts will be redelivered");
    }
    tracing::info!("analyze drained and stopped");
    match panicked {
        0 => Ok(()),
        n => Err(ServiceError::Model(format!("{n} model thread(s) panicked"))),
    }
}

async fn consume(
    consumer: &AnalyzeConsumer,
    tokenizer: &PostTokenizer,
    limits: &Limits,
    out: &Output,
    pending: &mpsc::Sender<Pending>,
    shutdown: &CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return,
            msg = consumer.recv() => msg,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(err) => {
                metrics::counter!("citypulse_analyze_consume_errors_total").increment(1);
                tracing::warn!(%err, "consume error");
                continue;
            }
        };
        let (partition, offset) = (msg.partition(), msg.offset());
        let epoch = out.tracker.lock().map(|mut t| t.start(partition, offset)).unwrap_or_default();
        let post = match decode(&msg, limits) {
            Ok(post) => post,
            Err(err) => {
                out.dead_letter(&msg, err.kind(), &err.to_string()).await;
                continue;
            }
        };
        match prepare_text(tokenizer, &post.text) {
            Ok(prepared) => {
                let item = Pending { partition, offset, epoch, post, prepared, received: std::time::Instant::now() };
                if pending.send(item).await.is_err() {
                    return;
                }
            }
            Err(err) => out.dead_letter(&msg, "tokenize", &err.to_string()).await,
        }
    }
}

fn decode(msg: &BorrowedMessage<'_>, limits: &Limits) -> Result<Post, DecodeError> {
    schema::decode::<Post>(msg.payload().unwrap_or_default(), limits)
}

type ModelResult = Result<Vec<(Pending, Labels)>, (Vec<Pending>, String)>;

/// What the model threads share: where batches come from and results go, and how to stop the
/// service when one of them panics.
#[derive(Clone)]
struct ModelShared {
    tracker: Arc<Mutex<OffsetTracker>>,
    batches: Arc<Mutex<mpsc::Receiver<Vec<Pending>>>>,
    results: mpsc::Sender<ModelResult>,
    stop: CancellationToken,
}

/// Cancels the token when dropped during a panic.
struct StopOnPanic(CancellationToken);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("a model thread panicked; stopping the service");
            self.0.cancel();
        }
    }
}

/// Each model worker runs on its own thread: forward passes are long and CPU-bound and must not
/// stall the async runtime that consumes and produces. Idle workers take turns waiting for the
/// next batch.
fn spawn_model_thread(index: usize, mut classifier: Classifier, shared: ModelShared) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("citypulse-model-{index}"))
        .spawn(move || {
            let ModelShared { tracker, batches, results, stop } = shared;
            let _stop_on_panic = StopOnPanic(stop);
            let next = || batches.lock().ok().and_then(|mut rx| rx.blocking_recv());
            while let Some(mut batch) = next() {
                drop_revoked(&tracker, &mut batch, |p| (p.partition, p.epoch));
                if batch.is_empty() {
                    continue;
                }
                metrics::histogram!("citypulse_analyze_batch_posts").record(batch.len() as f64);
                let tokens: Vec<&[u32]> = batch.iter().map(|p| p.prepared.tokens.as_slice()).collect();
                let result = match classifier.label_tokens(&tokens) {
                    Ok(labels) => Ok(batch.into_iter().zip(labels).collect()),
                    Err(err) => Err((batch, err.to_string())),
                };
                if results.blocking_send(result).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the model thread at start-up")
}

/// Everything the output side needs; cheap to clone.
#[derive(Clone)]
struct Output {
    producer: FutureProducer,
    consumer: Arc<AnalyzeConsumer>,
    tracker: Arc<Mutex<OffsetTracker>>,
    topic_raw: String,
    topic_analyzed: String,
    topic_dlq: String,
    model: ModelInfo,
}

/// Removes the posts whose partition was revoked since they were received (the rebalance can land
/// while they wait or while the model runs); their new owner analyses them.
fn drop_revoked<T>(tracker: &Mutex<OffsetTracker>, items: &mut Vec<T>, key: impl Fn(&T) -> (i32, u64)) {
    let Ok(t) = tracker.lock() else { return };
    let before = items.len();
    items.retain(|item| {
        let (partition, epoch) = key(item);
        t.is_current(partition, epoch)
    });
    let dropped = before - items.len();
    if dropped > 0 {
        metrics::counter!("citypulse_analyze_revoked_dropped_total").increment(dropped as u64);
        tracing::info!(dropped, "posts of revoked partitions dropped; their new owner analyses them");
    }
}

impl Output {
    async fn write(&self, result: ModelResult) {
        match result {
            Ok(mut items) => {
                drop_revoked(&self.tracker, &mut items, |(p, _)| (p.partition, p.epoch));
                let sends = items.into_iter().map(|(pending, labels)| self.publish(pending, labels));
                for (partition, offset, ok) in futures::future::join_all(sends).await {
                    if ok {
                        self.finish(partition, offset);
                    }
                }
            }
            Err((mut batch, reason)) => {
                drop_revoked(&self.tracker, &mut batch, |p| (p.partition, p.epoch));
                tracing::error!(%reason, posts = batch.len(), "model failed on a batch; sending it to the DLQ");
                for p in batch {
                    let record = dlq_record(
                        &self.topic_raw,
                        p.partition,
                        p.offset,
                        Some(p.post.key()),
                        "model_error",
                        &reason,
                        None,
                    );
                    if self.send_dlq(&record, p.post.key()).await {
                        self.finish(p.partition, p.offset);
                    }
                }
            }
        }
    }

    /// Produces one analysed post; true when Kafka acknowledged it.
    async fn publish(&self, pending: Pending, labels: Labels) -> (i32, i64, bool) {
        let (partition, offset) = (pending.partition, pending.offset);
        let key = pending.post.key();
        let label = labels.sentiment.label.as_str();
        let topic = labels.topics.first().map(|t| t.id.to_string()).unwrap_or_default();
        let analyzed = analyzed_post(pending.post, pending.prepared, labels, &self.model);
        let payload = schema::encode(&analyzed);
        let record = FutureRecord::to(&self.topic_analyzed).key(&key).payload(&payload);
        match self.producer.send(record, Duration::from_secs(60)).await {
            Ok(_) => {
                metrics::counter!("citypulse_analyze_posts_total", "sentiment" => label, "topic" => topic).increment(1);
                let latency = (chrono::Utc::now() - analyzed.fetched_at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::histogram!("citypulse_analyze_end_to_end_seconds").record(latency);
                metrics::histogram!("citypulse_analyze_in_service_seconds")
                    .record(pending.received.elapsed().as_secs_f64());
                (partition, offset, true)
            }
            Err((err, _)) => {
                // Not stored: the post is redelivered after a restart or rebalance (at least once).
                metrics::counter!("citypulse_analyze_produce_errors_total").increment(1);
                tracing::error!(%err, %key, "producing the analysed post failed; it will be redelivered");
                (partition, offset, false)
            }
        }
    }

    async fn dead_letter(&self, msg: &BorrowedMessage<'_>, kind: &'static str, reason: &str) {
        metrics::counter!("citypulse_analyze_dlq_total", "kind" => kind).increment(1);
        let key = msg.key().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned);
        let payload = msg.payload().map(|p| {
            let text: String = String::from_utf8_lossy(p).chars().take(4096).collect();
            crate::text::redact(&text).text
        });
        let record = dlq_record(&self.topic_raw, msg.partition(), msg.offset(), key.clone(), kind, reason, payload);
        // The record's reason is already redacted: log that one.
        tracing::warn!(partition = msg.partition(), offset = msg.offset(), kind, reason = %record.reason, "post sent to the DLQ");
        if self.send_dlq(&record, key.unwrap_or_default()).await {
            self.finish(msg.partition(), msg.offset());
        }
    }

    async fn send_dlq(&self, record: &DlqRecord, key: String) -> bool {
        let payload = schema::encode(record);
        let sent = self
            .producer
            .send(FutureRecord::to(&self.topic_dlq).key(&key).payload(&payload), Duration::from_secs(60))
            .await;
        if let Err((err, _)) = &sent {
            tracing::error!(%err, "writing to the DLQ failed; the message will be redelivered");
        }
        sent.is_ok()
    }

    fn finish(&self, partition: i32, offset: i64) {
        let next = self.tracker.lock().ok().and_then(|mut t| t.finish(partition, offset));
        if let Some(next) = next {
            let mut list = TopicPartitionList::new();
            if list.add_partition_offset(&self.topic_raw, partition, rdkafka::Offset::Offset(next)).is_ok() {
                // Fails only for a partition revoked meanwhile; its new owner re-reads it.
                let _ = self.consumer.store_offsets(&list);
            }
        }
    }
}

fn dlq_record(
    topic: &str,
    partition: i32,
    offset: i64,
    key: Option<String>,
    kind: &str,
    reason: &str,
    payload_redacted: Option<String>,
) -> DlqRecord {
    DlqRecord {
        stage: Stage::Analyze,
        error_kind: kind.to_owned(),
        reason: crate::text::redact(reason).text,
        topic: topic.to_owned(),
        partition,
        offset,
        key,
        payload_redacted,
        failed_at: chrono::Utc::now(),
    }
}

/// The Post's fields except `text`, plus the prepared text's redaction and language and the labels.
pub fn analyzed_post(post: Post, prepared: PreparedText, labels: Labels, model: &ModelInfo) -> AnalyzedPost {
    AnalyzedPost {
        id: post.id,
        source: post.source,
        url: post.url,
        author: post.author,
        lang_declared: post.lang,
        created_at: post.created_at,
        fetched_at: post.fetched_at,
        places: post.places,
        engagement: post.engagement,
        text_redacted: prepared.text_redacted,
        lang: prepared.lang,
        sentiment: labels.sentiment,
        topics: labels.topics,
        model: model.clone(),
        analyzed_at: chrono::Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_of_a_revoked_partition_are_dropped_and_the_rest_kept_in_order() {
        let tracker = Mutex::new(OffsetTracker::default());
        let mut items: Vec<(i32, i64, u64)> = Vec::new();
        for (partition, offset) in [(0, 1), (1, 1), (0, 2), (1, 2)] {
            let epoch = tracker.lock().unwrap().start(partition, offset);
            items.push((partition, offset, epoch));
        }
        tracker.lock().unwrap().forget(0);
        let late = tracker.lock().unwrap().start(0, 1);
        items.push((0, 1, late));
        drop_revoked(&tracker, &mut items, |&(p, _, e)| (p, e));
        assert_eq!(items, vec![(1, 1, 0), (1, 2, 0), (0, 1, 1)]);
    }
}
