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

use crate::classifier::{prepare_text, Classifier, EmbeddingPolicy, Labels, PreparedText};
use crate::tokenize::PostTokenizer;
use offsets::OffsetTracker;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, TopicPartitionList};
use schema::config::services::KafkaConfig;
use schema::config::ServicesConfig;
use schema::{AnalyzedPost, DecodeError, Limits, ModelInfo, Post, WireSearchIndex};
use stagekit::publish::MessageRef;
use stagekit::{DlqPublisher, Publisher, StageHealth, StageName};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The analyze stage's settings, from citypulse.toml.
#[derive(Debug, Clone)]
pub struct AnalyzeSettings {
    /// Topics (`topic_raw` in, `topic_analyzed` and `topic_dlq` out), group (`analyze_group`) and
    /// client settings.
    pub kafka: KafkaConfig,
    pub limits: Limits,
    /// Token budget of one batch (posts × padded length).
    pub batch_max_tokens: usize,
    /// Longest a post waits for its batch to fill.
    pub batch_max_wait: Duration,
    /// Which posts carry their embedding on to the store.
    pub embeddings: EmbeddingPolicy,
}

impl AnalyzeSettings {
    pub fn from_config(cfg: &ServicesConfig) -> Self {
        AnalyzeSettings {
            kafka: cfg.kafka.clone(),
            limits: cfg.limits.limits(),
            batch_max_tokens: cfg.analyze.batch_max_tokens,
            batch_max_wait: Duration::from_millis(cfg.analyze.batch_max_wait_ms),
            embeddings: EmbeddingPolicy { keep: cfg.emerging.keep_embeddings, claim_cosine: cfg.emerging.claim_cosine },
        }
    }
}

/// What the analyze stage is handed: the loaded classifier and its health.
pub struct AnalyzeDeps {
    pub classifier: Classifier,
    pub health: StageHealth,
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyzeStats {
    /// Messages read from the raw topic.
    pub received: u64,
    /// Analysed posts Kafka acknowledged.
    pub analyzed: u64,
    /// DLQ records Kafka acknowledged.
    pub dead_lettered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    analyzed: AtomicU64,
    dead_lettered: AtomicU64,
}

impl Counters {
    fn stats(&self) -> AnalyzeStats {
        AnalyzeStats {
            received: self.received.load(Ordering::Relaxed),
            analyzed: self.analyzed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
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
    /// Consumer lag per partition (`citypulse_analyze_consumer_lag_messages`).
    fn stats(&self, statistics: rdkafka::Statistics) {
        stagekit::lag::record(StageName::Analyze, &statistics);
        stagekit::offsets::watch(StageName::Analyze, &statistics);
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

/// The analyze stage's entry point (`citypulse analyze`, or a stage of `citypulse run`): runs until
/// `shutdown`, then drains: in-flight posts are finished and their offsets committed.
pub async fn run(
    settings: AnalyzeSettings,
    deps: AnalyzeDeps,
    shutdown: CancellationToken,
) -> Result<AnalyzeStats, ServiceError> {
    let AnalyzeDeps { classifier, health } = deps;
    let kafka = &settings.kafka;
    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let consumer: Arc<AnalyzeConsumer> = Arc::new(
        stagekit::kafka::consumer(kafka, &kafka.analyze_group)
            .create_with_context(RebalanceContext { tracker: tracker.clone() })?,
    );
    consumer.subscribe(&[&kafka.topic_raw])?;
    let publisher = Publisher::new(kafka, health.clone())?;
    let dlq = DlqPublisher::new(publisher.clone(), kafka, schema::Stage::Analyze);
    // A model thread that panics stops the whole service (drain, then an error), as a lone one
    // did, instead of leaving the others running at part capacity with its batch's offsets stuck.
    let stop = shutdown.child_token();
    let acks = Acks {
        consumer: consumer.clone(),
        tracker: tracker.clone(),
        topic_raw: kafka.topic_raw.clone(),
        counters: Arc::default(),
    };
    // Dead letters go out on their own task, so that a DLQ record waiting for Kafka holds up
    // neither the consumer nor the analysed posts of other messages (offsets are stored in
    // partition order whatever order the acknowledgements come in).
    let (dlq_jobs, dlq_rx) = mpsc::channel::<DlqJob>(256);
    let dead_letters = tokio::spawn(publish_dead_letters(dlq.clone(), acks.clone(), dlq_rx, stop.clone()));
    let out = Output {
        publisher,
        dlq,
        dlq_jobs,
        acks: acks.clone(),
        topic_analyzed: kafka.topic_analyzed.clone(),
        model: classifier.model().clone(),
        embeddings: settings.embeddings,
        stop: stop.clone(),
    };
    let tokenizer = classifier.tokenizer().clone();
    let limits = settings.limits;

    let (pending_tx, pending_rx) = mpsc::channel::<Pending>(256);
    // One batch waits while the model workers run theirs: batches are cut as late as possible,
    // from the fullest window.
    let (batch_tx, batch_rx) = mpsc::channel::<Vec<Pending>>(1);
    let workers = classifier.into_workers();
    let (result_tx, mut result_rx) = mpsc::channel::<ModelResult>(2 * workers.len());
    let window = batcher::Limits {
        batch_tokens: settings.batch_max_tokens,
        window_tokens: WINDOW_BATCHES * settings.batch_max_tokens,
        max_wait: settings.batch_max_wait,
    };
    let batcher = tokio::spawn(batcher::run(pending_rx, batch_tx, window));
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
    drop(out);
    let _ = dead_letters.await;
    match consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored since the last commit: nothing to commit, nothing lost.
        Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {
            tracing::debug!("final offset commit: nothing new to commit");
        }
        Err(err) => tracing::warn!(%err, "final offset commit failed; the last posts will be redelivered"),
        Ok(()) => {}
    }
    let stats = acks.counters.stats();
    tracing::info!(?stats, "analyze drained and stopped");
    match panicked {
        0 => Ok(stats),
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
                stagekit::lag::receive_error(StageName::Analyze, &err);
                continue;
            }
        };
        out.acks.counters.received.fetch_add(1, Ordering::Relaxed);
        let (partition, offset) = (msg.partition(), msg.offset());
        let epoch = out.acks.tracker.lock().map(|mut t| t.start(partition, offset)).unwrap_or_default();
        let post = match decode(&msg, limits) {
            Ok(post) => post,
            Err(err) => {
                out.dead_letter(out.reject(&msg, err.kind(), &err.to_string())).await;
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
            Err(err) => out.dead_letter(out.reject(&msg, "tokenize", &err.to_string())).await,
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
    publisher: Publisher,
    /// Builds DLQ records; [`publish_dead_letters`] sends them.
    dlq: DlqPublisher,
    dlq_jobs: mpsc::Sender<DlqJob>,
    acks: Acks,
    topic_analyzed: String,
    model: ModelInfo,
    embeddings: EmbeddingPolicy,
    /// Ends the publishers' retries (shutdown, or a model thread's panic).
    stop: CancellationToken,
}

/// Marks messages done once their output is acknowledged: stores offsets, counts.
#[derive(Clone)]
struct Acks {
    consumer: Arc<AnalyzeConsumer>,
    tracker: Arc<Mutex<OffsetTracker>>,
    topic_raw: String,
    counters: Arc<Counters>,
}

impl Acks {
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

/// A DLQ record and the message it stands for.
struct DlqJob {
    record: schema::DlqRecord,
    partition: i32,
    offset: i64,
}

/// Publishes dead letters in arrival order until every sender is gone; a message is done once its
/// record is acknowledged.
async fn publish_dead_letters(
    dlq: DlqPublisher,
    acks: Acks,
    mut jobs: mpsc::Receiver<DlqJob>,
    stop: CancellationToken,
) {
    while let Some(job) = jobs.recv().await {
        if dlq.publish(&job.record, &stop).await.is_ok() {
            acks.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            acks.finish(job.partition, job.offset);
        }
    }
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
                drop_revoked(&self.acks.tracker, &mut items, |(p, _)| (p.partition, p.epoch));
                let sends = items.into_iter().map(|(pending, labels)| self.publish(pending, labels));
                for (partition, offset, ok) in futures::future::join_all(sends).await {
                    if ok {
                        self.acks.finish(partition, offset);
                    }
                }
            }
            Err((mut batch, reason)) => {
                drop_revoked(&self.acks.tracker, &mut batch, |p| (p.partition, p.epoch));
                tracing::error!(%reason, posts = batch.len(), "model failed on a batch; sending it to the DLQ");
                for p in batch {
                    let key = p.post.key();
                    let at = MessageRef {
                        topic: &self.acks.topic_raw,
                        partition: p.partition,
                        offset: p.offset,
                        key: Some(&key),
                    };
                    let record = self.dlq.record(at, "model_error", crate::text::redact(&reason).text, None);
                    self.dead_letter(record).await;
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
        let analyzed = analyzed_post(pending.post, pending.prepared, labels, &self.model, self.embeddings);
        let payload = schema::encode(&analyzed);
        let sent = self
            .publisher
            .send(&self.topic_analyzed, Some(&key), &payload, "producing the analysed post", &self.stop)
            .await;
        if sent.is_err() {
            // Shut down before Kafka took it: not stored, so it is redelivered (at least once).
            return (partition, offset, false);
        }
        self.acks.counters.analyzed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("citypulse_analyze_posts_total", "sentiment" => label, "topic" => topic).increment(1);
        let latency = (chrono::Utc::now() - analyzed.fetched_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("citypulse_analyze_end_to_end_seconds").record(latency);
        metrics::histogram!("citypulse_analyze_in_service_seconds").record(pending.received.elapsed().as_secs_f64());
        (partition, offset, true)
    }

    /// A DLQ record for a message that cannot be analysed; its reason and payload are redacted
    /// here (the DLQ never holds raw text).
    fn reject(&self, msg: &BorrowedMessage<'_>, kind: &'static str, reason: &str) -> schema::DlqRecord {
        let key = msg.key().and_then(|k| std::str::from_utf8(k).ok());
        let payload = msg.payload().map(|p| {
            let text: String = String::from_utf8_lossy(p).chars().take(4096).collect();
            crate::text::redact(&text).text
        });
        let at = MessageRef { topic: &self.acks.topic_raw, partition: msg.partition(), offset: msg.offset(), key };
        self.dlq.record(at, kind, crate::text::redact(reason).text, payload)
    }

    /// Hands `record` to the dead-letter task (waiting while its queue is full).
    async fn dead_letter(&self, record: schema::DlqRecord) {
        let job = DlqJob { partition: record.partition, offset: record.offset, record };
        // Fails only when the task is gone (shutdown): not stored, so redelivered.
        let _ = self.dlq_jobs.send(job).await;
    }
}

/// The Post's fields except `text`, plus the prepared text's redaction and language and the labels,
/// and the embedding when `policy` says no topic claims the post.
pub fn analyzed_post(
    post: Post,
    prepared: PreparedText,
    labels: Labels,
    model: &ModelInfo,
    policy: EmbeddingPolicy,
) -> AnalyzedPost {
    let embedding = policy.unclaimed(&labels).then_some(labels.embedding);
    let search = Some(WireSearchIndex::of(&prepared.text_redacted));
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
        created_at_estimated: post.created_at_estimated,
        text_redacted: prepared.text_redacted,
        lang: prepared.lang,
        sentiment: labels.sentiment,
        topics: labels.topics,
        model: model.clone(),
        analyzed_at: chrono::Utc::now(),
        embedding,
        search,
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
