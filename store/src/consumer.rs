//! `citypulse store`: consumes `posts.analyzed`, writes batches through [`Writer`], and stores each
//! partition's offset only once everything up to it is in ClickHouse or in `posts.dlq`.
//!
//! A batch closes on rows, bytes or age (StoreConfig). Its messages are handled as a unit: decoded
//! posts are written (retrying transient failures for as long as it takes), undecodable messages
//! and posts ClickHouse refuses are published to the DLQ and acknowledged there, and only then are
//! the batch's highest offsets stored (`enable.auto.offset.store=false`; auto-commit sends them).
//! On shutdown the open batch gets one write attempt, stored offsets are committed synchronously,
//! and whatever was not stored is redelivered to the next consumer, which the writer de-duplicates.

use crate::error::StoreError;
use crate::ident::Database;
use crate::writer::{Writer, WriterConfig};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::statistics::Statistics;
use rdkafka::Message;
use schema::config::services::KafkaConfig;
use schema::config::ServicesConfig;
use schema::{AnalyzedPost, DecodeError, Limits};
use stagekit::publish::MessageRef;
use stagekit::{Backoff, DlqPublisher, Publisher, StageHealth, StageName};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest payload copied into a DLQ record of an undecodable message, bytes.
const DLQ_PAYLOAD_MAX: usize = 64 * 1024;

/// Everything [`consume`] needs besides the writer. Kafka clients, topics and the group come
/// from `kafka` (`topic_analyzed`, `topic_dlq`, `store_group`) through [`stagekit::kafka`].
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub kafka: KafkaConfig,
    pub batch_max_rows: usize,
    pub batch_max_bytes: usize,
    pub batch_period: Duration,
    pub limits: Limits,
}

impl ConsumerSettings {
    pub fn from_config(cfg: &ServicesConfig) -> Self {
        ConsumerSettings {
            kafka: cfg.kafka.clone(),
            batch_max_rows: usize::try_from(cfg.store.batch_max_rows).unwrap_or(usize::MAX),
            batch_max_bytes: usize::try_from(cfg.store.batch_max_bytes).unwrap_or(usize::MAX),
            batch_period: Duration::from_millis(cfg.store.batch_period_ms),
            limits: cfg.limits.limits(),
        }
    }
}

/// The writer `citypulse store` uses for `cfg`.
pub fn writer_for(cfg: &ServicesConfig) -> Result<Writer, StoreError> {
    let db = Database::from_config(&cfg.clickhouse)?;
    let wcfg = WriterConfig {
        backoff: Backoff::up_to(Duration::from_millis(cfg.store.retry_max_backoff_ms)),
        attempt_timeout: Duration::from_millis(cfg.clickhouse.timeout_ms.max(1)),
        posts_retention_days: Some(cfg.clickhouse.posts_retention_days),
        ..WriterConfig::default()
    };
    Ok(Writer::new(crate::client(&cfg.clickhouse), db, wcfg))
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
        stagekit::lag::record(StageName::Store, &stats);
        stagekit::offsets::watch(StageName::Store, &stats);
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

/// The consuming loop of the store stage ([`crate::run`] adds migrations, the health watch and
/// retention around it): runs until `shutdown`, then drains.
pub async fn consume(
    s: ConsumerSettings,
    writer: Writer,
    health: StageHealth,
    shutdown: CancellationToken,
) -> Result<RunStats, StoreError> {
    let k = &s.kafka;
    let context = StoreContext { topic: k.topic_analyzed.clone(), revoked: Mutex::default() };
    let consumer: StoreConsumer = stagekit::kafka::consumer(k, &k.store_group).create_with_context(context)?;
    let dlq = DlqPublisher::new(Publisher::new(k, health)?, k, schema::Stage::Store);
    consumer.subscribe(&[k.topic_analyzed.as_str()])?;
    tracing::info!(topic = %k.topic_analyzed, group = %k.store_group, "store consuming");

    let mut stats = RunStats::default();
    let mut batch = Batch::default();
    loop {
        let deadline = batch.opened.map(|t| t + s.batch_period);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = sleep_until(deadline) => {
                match flush(&s, &writer, &consumer, &dlq, &mut batch, &mut stats, &shutdown).await {
                    Ok(()) => {}
                    Err(StoreError::Cancelled) => break,
                    Err(e) => return Err(e),
                }
            }
            msg = consumer.recv() => {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        stagekit::lag::receive_error(StageName::Store, &e);
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
                    match flush(&s, &writer, &consumer, &dlq, &mut batch, &mut stats, &shutdown).await {
                        Ok(()) => {}
                        Err(StoreError::Cancelled) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    // Drain: one more attempt for the open batch (the writer does not retry after shutdown).
    match flush(&s, &writer, &consumer, &dlq, &mut batch, &mut stats, &shutdown).await {
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
    dlq: &DlqPublisher,
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
        let at = MessageRef {
            topic: &s.kafka.topic_analyzed,
            partition: item.partition,
            offset: item.offset,
            key: item.key.as_deref(),
        };
        dlq.publish(&dlq.record(at, kind, reason, Some(payload)), shutdown).await?;
        stats.dlq += 1;
    }
    // Everything in the batch is stored or dead-lettered: acknowledge up to each partition's last.
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for item in &items {
        let e = last.entry(item.partition).or_insert(item.offset);
        *e = (*e).max(item.offset);
    }
    for (partition, offset) in last {
        if let Err(e) = consumer.store_offset(&s.kafka.topic_analyzed, partition, offset) {
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
