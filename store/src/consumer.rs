//! `citypulse store`: consumes `posts.analyzed`, writes batches through [`Writer`], and stores each
//! partition's offset only once everything up to it is in ClickHouse or in `posts.dlq`.
//!
//! A batch closes on rows, bytes or age (StoreConfig). Its messages are handled as a unit: decoded
//! posts are written (retrying transient failures for as long as it takes), undecodable messages
//! and posts ClickHouse refuses are published to the DLQ and acknowledged there, and only then are
//! the batch's highest offsets stored (`enable.auto.offset.store=false`; auto-commit sends them).
//! On shutdown the open batch gets one write attempt, stored offsets are committed synchronously,
//! and whatever was not stored is redelivered to the next consumer, which the writer de-duplicates.

use crate::error::{Backoff, StoreError};
use crate::ident::Database;
use crate::writer::{Writer, WriterConfig};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, Message};
use schema::config::ServicesConfig;
use schema::{AnalyzedPost, DecodeError, DlqRecord, Limits, Stage};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest payload copied into a DLQ record of an undecodable message, bytes.
const DLQ_PAYLOAD_MAX: usize = 64 * 1024;

/// Everything [`run_with`] needs besides the writer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub brokers: String,
    pub group: String,
    pub topic: String,
    pub dlq_topic: String,
    pub batch_max_rows: usize,
    pub batch_max_bytes: usize,
    pub batch_period: Duration,
    pub limits: Limits,
    pub delivery_timeout: Duration,
    /// Pause cap between retries of a failed DLQ publish.
    pub retry_max_backoff: Duration,
    /// Extra librdkafka properties (tests: short session timeouts).
    pub extra: Vec<(String, String)>,
}

impl ConsumerSettings {
    pub fn from_config(cfg: &ServicesConfig) -> Self {
        ConsumerSettings {
            brokers: cfg.kafka.brokers.clone(),
            group: cfg.kafka.store_group.clone(),
            topic: cfg.kafka.topic_analyzed.clone(),
            dlq_topic: cfg.kafka.topic_dlq.clone(),
            batch_max_rows: usize::try_from(cfg.store.batch_max_rows).unwrap_or(usize::MAX),
            batch_max_bytes: usize::try_from(cfg.store.batch_max_bytes).unwrap_or(usize::MAX),
            batch_period: Duration::from_millis(cfg.store.batch_period_ms),
            limits: cfg.limits.limits(),
            delivery_timeout: Duration::from_millis(u64::from(cfg.kafka.delivery_timeout_ms)),
            retry_max_backoff: Duration::from_millis(cfg.store.retry_max_backoff_ms),
            extra: Vec::new(),
        }
    }
}

/// The writer `citypulse store` uses for `cfg`.
pub fn writer_for(cfg: &ServicesConfig) -> Result<Writer, StoreError> {
    let db = Database::new(&cfg.clickhouse.database)?;
    let wcfg = WriterConfig {
        backoff: Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(cfg.store.retry_max_backoff_ms.max(200)),
        },
        attempt_timeout: Duration::from_millis(cfg.clickhouse.timeout_ms.max(1)),
        posts_retention_days: Some(cfg.clickhouse.posts_retention_days),
        ..WriterConfig::default()
    };
    Ok(Writer::new(crate::client(&cfg.clickhouse), db, wcfg))
}

/// The `citypulse store` service: runs until `shutdown`, then drains.
pub async fn run(cfg: &ServicesConfig, shutdown: CancellationToken) -> Result<RunStats, StoreError> {
    run_with(ConsumerSettings::from_config(cfg), writer_for(cfg)?, shutdown).await
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    pub messages: u64,
    pub batches: u64,
    pub inserted: u64,
    pub replaced: u64,
    pub duplicates: u64,
    pub stale: u64,
    pub expired: u64,
    pub dlq: u64,
}

/// Rebalance and statistics hooks. Runs inside `recv()`, on the loop's own task, so it never races
/// a flush: at a revocation everything flushed so far is committed, and the loop then drops the
/// open batch's messages of the revoked partitions (their offsets were never stored, so the next
/// owner reads them again). That is the drain: nothing half-done crosses a rebalance, and no two
/// consumers write the same key at once.
pub struct StoreContext {
    topic: String,
    revoked: Mutex<Vec<i32>>,
}

impl ClientContext for StoreContext {
    fn stats(&self, stats: Statistics) {
        let Some(topic) = stats.topics.get(&self.topic) else { return };
        for (id, p) in &topic.partitions {
            // -1 (unknown) for partitions this consumer does not own.
            if *id >= 0 && p.consumer_lag >= 0 {
                metrics::gauge!("citypulse_store_consumer_lag_messages", "partition" => id.to_string())
                    .set(p.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for StoreContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "commit before revocation");
        }
        let parts: Vec<i32> =
            tpl.elements().iter().filter(|e| e.topic() == self.topic).map(|e| e.partition()).collect();
        tracing::info!(?parts, "partitions revoked");
        if let Ok(mut revoked) = self.revoked.lock() {
            revoked.extend(parts);
        }
    }

    /// Logged like the revocation, so that an operator (and a test) can tell which instance
    /// owns which partitions after a rebalance.
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else { return };
        let parts: Vec<i32> =
            tpl.elements().iter().filter(|e| e.topic() == self.topic).map(|e| e.partition()).collect();
        tracing::info!(?parts, "partitions assigned");
    }
}

impl StoreContext {
    fn take_revoked(&self) -> Vec<i32> {
        self.revoked.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }
}

type StoreConsumer = StreamConsumer<StoreContext>;

/// One consumed message, owned. The payload is kept as received: a post the writer refuses goes to
/// the DLQ as those bytes, while the decoded post itself moves into the writer without a copy.
struct Pending {
    partition: i32,
    offset: i64,
    key: Option<String>,
    payload: Vec<u8>,
    decoded: Option<Result<AnalyzedPost, DecodeError>>,
}

#[derive(Default)]
struct Batch {
    items: Vec<Pending>,
    bytes: usize,
    opened: Option<Instant>,
}

pub async fn run_with(
    s: ConsumerSettings,
    writer: Writer,
    shutdown: CancellationToken,
) -> Result<RunStats, StoreError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &s.brokers)
        .set("group.id", &s.group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "15000");
    let mut pc = ClientConfig::new();
    pc.set("bootstrap.servers", &s.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", s.delivery_timeout.as_millis().to_string());
    for (k, v) in &s.extra {
        cc.set(k, v);
    }
    let context = StoreContext { topic: s.topic.clone(), revoked: Mutex::default() };
    let consumer: StoreConsumer = cc.create_with_context(context)?;
    let producer: FutureProducer = pc.create()?;
    consumer.subscribe(&[s.topic.as_str()])?;
    tracing::info!(topic = %s.topic, group = %s.group, "store consuming");

    let mut stats = RunStats::default();
    let mut batch = Batch::default();
    loop {
        let deadline = batch.opened.map(|t| t + s.batch_period);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = sleep_until(deadline) => {
                match flush(&s, &writer, &consumer, &producer, &mut batch, &mut stats, &shutdown).await {
                    Ok(()) => {}
                    Err(StoreError::Cancelled) => break,
                    Err(e) => return Err(e),
                }
            }
            msg = consumer.recv() => {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka receive error");
                        metrics::counter!("citypulse_store_kafka_errors_total").increment(1);
                        continue;
                    }
                };
                // Revocations happened inside this recv(), before `msg` was fetched: drop the open
                // batch's messages of those partitions first (the next owner re-reads them).
                drop_revoked(&consumer, &mut batch);
                let payload = msg.payload().unwrap_or_default();
                batch.bytes += payload.len();
                batch.opened.get_or_insert_with(Instant::now);
                batch.items.push(Pending {
                    partition: msg.partition(),
                    offset: msg.offset(),
                    key: msg.key().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned),
                    payload: payload.to_vec(),
                    decoded: Some(schema::decode::<AnalyzedPost>(payload, &s.limits)),
                });
                stats.messages += 1;
                if batch.items.len() >= s.batch_max_rows || batch.bytes >= s.batch_max_bytes {
                    match flush(&s, &writer, &consumer, &producer, &mut batch, &mut stats, &shutdown).await {
                        Ok(()) => {}
                        Err(StoreError::Cancelled) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    // Drain: one more attempt for the open batch (the writer does not retry after shutdown).
    match flush(&s, &writer, &consumer, &producer, &mut batch, &mut stats, &shutdown).await {
        Ok(()) | Err(StoreError::Cancelled) => {}
        Err(e) => return Err(e),
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // "No offset stored" when nothing was consumed: not a failure.
        tracing::debug!(error = %e, "final commit");
    }
    tracing::info!(?stats, "store stopped");
    Ok(stats)
}

/// Forgets the open batch's messages of revoked partitions (see [`StoreContext`]).
fn drop_revoked(consumer: &StoreConsumer, batch: &mut Batch) {
    let revoked = consumer.context().take_revoked();
    if !revoked.is_empty() {
        batch.items.retain(|i| !revoked.contains(&i.partition));
        batch.bytes = batch.items.iter().map(|i| i.payload.len()).sum();
        if batch.items.is_empty() {
            batch.opened = None;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes the batch, sends what failed to the DLQ, then stores the offsets it covers.
async fn flush(
    s: &ConsumerSettings,
    writer: &Writer,
    consumer: &StoreConsumer,
    producer: &FutureProducer,
    batch: &mut Batch,
    stats: &mut RunStats,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    drop_revoked(consumer, batch);
    if batch.items.is_empty() {
        return Ok(());
    }
    // Taken out whole: if anything below fails or is cancelled, none of these offsets is stored and
    // Kafka redelivers all of them (the writer recognises what was written already).
    let mut items = std::mem::take(batch).items;
    let mut posts = Vec::new();
    let mut post_item = Vec::new(); // index in `posts` → index in `items`
    let mut dead: Vec<(usize, &'static str, String)> = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        // Moved into the writer: `items` keeps the payload for the DLQ.
        match item.decoded.take() {
            Some(Ok(post)) => {
                posts.push(post);
                post_item.push(i);
            }
            Some(Err(e)) => dead.push((i, e.kind(), e.to_string())),
            None => {}
        }
    }
    let report = writer.write(posts, shutdown).await?;
    dead.extend(report.rejected.iter().map(|r| (post_item[r.index], r.kind, r.reason.clone())));
    dead.sort_by_key(|d| d.0);
    for (i, kind, reason) in dead {
        let item = &items[i];
        // A decoded post's payload is analysed JSON (redacted text) and within the message limit; an
        // undecodable one may be anything, so only its start is kept.
        let bytes = if post_item.contains(&i) {
            &item.payload[..]
        } else {
            &item.payload[..item.payload.len().min(DLQ_PAYLOAD_MAX)]
        };
        let payload = String::from_utf8_lossy(bytes).into_owned();
        let record = DlqRecord {
            stage: Stage::Store,
            error_kind: kind.to_owned(),
            reason,
            topic: s.topic.clone(),
            partition: item.partition,
            offset: item.offset,
            key: item.key.clone(),
            payload_redacted: Some(payload),
            failed_at: chrono::Utc::now(),
        };
        send_dlq(s, producer, &record, shutdown).await?;
        metrics::counter!("citypulse_store_dlq_total", "kind" => kind).increment(1);
        tracing::warn!(partition = item.partition, offset = item.offset, kind, "sent to DLQ");
        stats.dlq += 1;
    }
    // Everything in the batch is stored or dead-lettered: acknowledge up to each partition's last.
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for item in &items {
        let e = last.entry(item.partition).or_insert(item.offset);
        *e = (*e).max(item.offset);
    }
    for (partition, offset) in last {
        if let Err(e) = consumer.store_offset(&s.topic, partition, offset) {
            // The partition was revoked meanwhile: its new owner re-reads and the writer de-duplicates.
            tracing::warn!(partition, offset, error = %e, "could not store offset");
        }
    }
    // Commit now rather than at the next auto-commit tick: shrinks what a new owner re-reads after a
    // rebalance (commits inside the revocation callback are refused while the group rebalances).
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
        tracing::debug!(error = %e, "commit after batch");
    }
    stats.batches += 1;
    stats.inserted += report.inserted as u64;
    stats.replaced += report.replaced as u64;
    stats.duplicates += report.duplicates as u64;
    stats.stale += report.stale as u64;
    stats.expired += report.expired as u64;
    Ok(())
}

/// Publishes one DLQ record, retrying until Kafka acknowledges it or shutdown.
async fn send_dlq(
    s: &ConsumerSettings,
    producer: &FutureProducer,
    record: &DlqRecord,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let body = schema::encode(record);
    let backoff =
        Backoff { initial: Duration::from_millis(200), max: s.retry_max_backoff.max(Duration::from_millis(200)) };
    let mut attempt = 0;
    loop {
        let mut rec = FutureRecord::to(&s.dlq_topic).payload(&body);
        if let Some(k) = &record.key {
            rec = rec.key(k.as_str());
        }
        match producer.send(rec, s.delivery_timeout).await {
            Ok(_) => return Ok(()),
            Err((e, _)) => {
                tracing::warn!(error = %e, attempt, "DLQ publish failed; retrying");
                metrics::counter!("citypulse_store_dlq_errors_total").increment(1);
            }
        }
        let pause = backoff.delay(attempt);
        attempt += 1;
        tokio::select! {
            _ = shutdown.cancelled() => return Err(StoreError::Cancelled),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
