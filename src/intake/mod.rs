//! The intake desk: where the city's own records (the 1022 hotline, a ward's app) enter the
//! pipeline, pushed to `POST /api/v1/intake/{channel}` ([`crate::serve::intake`]) or imported
//! from a file (`citypulse import`, [`import`]). Both hand a batch of read
//! records to [`Desk::take`], which answers every record:
//!
//! 1. checked and made a post (`ingest::parse::intake::to_post`), or `rejected` with the reason;
//! 2. an id found in `intake_seen` (the channel sent it before) is a `duplicate`: a retried push
//!    changes nothing;
//! 3. the rest go to Kafka `posts.raw`, and only those Kafka acknowledged are `accepted` (one it
//!    did not is `rejected` with kind `not_delivered`: send it again);
//! 4. the accepted ids are written to `intake_seen` before the answer;
//! 5. an id repeated within the batch gets its first copy's fate: `duplicate` when that was taken,
//!    the same rejection when it was not.
//!
//! Steps 2–4 hold the channel's lock, so two requests racing with one id cannot both be accepted
//! (within one process: run one `serve`, or one `import`, per channel at a time). If the
//! `intake_seen` write fails after Kafka took the posts, the posts stay accepted (they are in
//! Kafka, and the store collapses a re-sent post by its key) and their rows are kept as pending:
//! consulted as if written, written with the next batch, and by [`Desk::flush`] at the end.

pub mod import;

use anyhow::Context;
use chrono::Utc;
use ingest::parse::intake::{to_post, IntakeCtx, IntakePost, ReadRecord, RecordError};
use ingest::parse::ParseCtx;
use ingest::places::Gazetteer;
use ingest::producer::PostProducer;
use schema::author::AuthorHasher;
use schema::config::sources::IntakeChannel;
use schema::config::Config;
use schema::{Limits, SourceId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use store::{IntakeSeen, SeenRow};
use tokio::sync::Mutex;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Accepted,
    Duplicate,
    Rejected,
}

/// The answer for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Position in the request (or the file), from 0.
    pub index: usize,
    /// The record's id as given, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: Status,
    /// Why a record was rejected, or what to know about a taken or duplicate one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A short stable name of the rejection (`bad_time`, `empty_text`, `not_delivered`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

impl Outcome {
    fn rejected(index: usize, id: Option<String>, e: &RecordError) -> Self {
        Outcome { index, id, status: Status::Rejected, reason: Some(e.to_string()), kind: Some(e.kind()) }
    }
}

/// Counts of a batch's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Tally {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
}

impl Tally {
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut t = Tally::default();
        for o in outcomes {
            match o.status {
                Status::Accepted => t.accepted += 1,
                Status::Duplicate => t.duplicate += 1,
                Status::Rejected => t.rejected += 1,
            }
        }
        t
    }

    pub fn add(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.duplicate += other.duplicate;
        self.rejected += other.rejected;
    }
}

/// Why a batch got no per-record answer at all: the ledger cannot be read (nothing was sent).
#[derive(Debug, thiserror::Error)]
#[error("the intake ledger (ClickHouse intake_seen) cannot be read, nothing was taken: {0}")]
pub struct Unavailable(#[from] store::ClickHouseError);

/// A channel, and its lock, which guards the rows Kafka took but `intake_seen` has not yet.
struct Channel {
    config: IntakeChannel,
    pending: Mutex<Vec<SeenRow>>,
}

/// Takes batches of records for the configured channels.
pub struct Desk {
    channels: HashMap<String, Channel>,
    producer: PostProducer,
    seen: IntakeSeen,
    hasher: AuthorHasher,
    gazetteer: Gazetteer,
    limits: Limits,
    zone: chrono_tz::Tz,
}

impl Desk {
    /// The desk of every enabled `[[intake]]` channel; migrates the database (for `intake_seen`).
    pub async fn from_config(config: &Config, hasher: AuthorHasher) -> anyhow::Result<Desk> {
        let s = &config.services;
        let client = store::client(&s.clickhouse);
        let db = store::Database::from_config(&s.clickhouse)?;
        store::migrate(&client, &db, store::CityZone::new(&s.city.time_zone)?)
            .await
            .context("preparing the intake_seen table (the intake needs ClickHouse to start)")?;
        let producer = PostProducer::new(&s.kafka).context("the intake's Kafka producer")?;
        Ok(Desk::new(config, hasher, producer, IntakeSeen::new(client, db)))
    }

    pub fn new(config: &Config, hasher: AuthorHasher, producer: PostProducer, seen: IntakeSeen) -> Desk {
        let channels = config
            .sources
            .intake
            .iter()
            .filter(|c| c.enabled)
            .map(|c| (c.name.to_string(), Channel { config: c.clone(), pending: Mutex::default() }))
            .collect();
        Desk {
            channels,
            producer,
            seen,
            hasher,
            gazetteer: Gazetteer::new(&config.places),
            limits: config.services.limits.limits(),
            zone: config.tz(),
        }
    }

    /// The enabled channel called `name`.
    pub fn channel(&self, name: &str) -> Option<&IntakeChannel> {
        self.channels.get(name).map(|c| &c.config)
    }

    /// Longest line or row of a record, bytes: a Kafka message's limit (no longer record can be a
    /// post).
    pub fn max_record_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }

    pub fn channels(&self) -> impl Iterator<Item = &IntakeChannel> {
        self.channels.values().map(|c| &c.config)
    }

    /// Answers every record of a batch (`(index, record)`), in the batch's order.
    pub async fn take(&self, name: &str, records: Vec<(usize, ReadRecord)>) -> Result<Vec<Outcome>, Unavailable> {
        let channel = self.channels.get(name).expect("the caller checked the channel");
        let source = channel.config.name.clone();
        let Checked { mut outcomes, candidates, repeats } = self.check(&source, records);
        let mut pending = channel.pending.lock().await;
        let ids: Vec<&str> = candidates.iter().map(|(_, c)| c.post.id.as_str()).collect();
        let mut seen = self.seen.seen(name, &ids).await?;
        seen.extend(pending.iter().map(|r| (r.id.clone(), r.content_hash)));
        let mut fresh = Vec::new();
        for (index, c) in candidates {
            let hash = content_hash(&c);
            match seen.get(&c.post.id) {
                Some(first) => outcomes.push(duplicate(index, c.post.id, *first == hash)),
                None => fresh.push((index, c, hash)),
            }
        }
        let posts: Vec<schema::Post> = fresh.iter().map(|(_, c, _)| c.post.clone()).collect();
        let delivered = self.deliver(&posts).await;
        let now = u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX);
        let mut rows = pending.clone();
        for ((index, c, hash), sent) in fresh.into_iter().zip(delivered) {
            let id = Some(c.post.id.clone());
            outcomes.push(match sent {
                Ok(()) => {
                    let category = c.category.unwrap_or_default();
                    rows.push(SeenRow {
                        channel: name.to_owned(),
                        id: c.post.id,
                        content_hash: hash,
                        category,
                        seen_at: now,
                    });
                    Outcome { index, id, status: Status::Accepted, reason: c.warning, kind: None }
                }
                Err(e) => {
                    tracing::warn!(channel = name, error = %e, "an intake record was not delivered to Kafka");
                    let reason = Some("not delivered to Kafka; send it again".into());
                    Outcome { index, id, status: Status::Rejected, reason, kind: Some("not_delivered") }
                }
            });
        }
        match self.seen.record(&rows).await {
            Ok(()) => pending.clear(),
            Err(e) => {
                tracing::error!(channel = name, rows = rows.len(), error = %e, "cannot write intake_seen; the rows are kept and written with the next batch");
                metrics::counter!("citypulse_intake_ledger_errors_total", "channel" => name.to_owned()).increment(1);
                *pending = rows;
            }
        }
        drop(pending);
        let repeated: Vec<Outcome> = repeats.into_iter().map(|(index, id)| repeat_of(&outcomes, index, id)).collect();
        outcomes.extend(repeated);
        outcomes.sort_by_key(|o| o.index);
        count(name, &outcomes);
        Ok(outcomes)
    }

    /// Writes the rows still pending in `intake_seen` (`serve` and `import` call it before they
    /// end): returns how many were written.
    pub async fn flush(&self) -> Result<usize, store::ClickHouseError> {
        let mut written = 0;
        for channel in self.channels.values() {
            let mut pending = channel.pending.lock().await;
            self.seen.record(&pending).await?;
            written += pending.len();
            pending.clear();
        }
        Ok(written)
    }

    /// Step 1, and the ids repeated within the batch (answered after delivery).
    fn check(&self, source: &SourceId, records: Vec<(usize, ReadRecord)>) -> Checked {
        let parse =
            ParseCtx { source, hasher: &self.hasher, limits: &self.limits, fetched_at: Utc::now(), zone: self.zone };
        let ctx = IntakeCtx { parse, gazetteer: &self.gazetteer };
        let mut checked = Checked::default();
        let mut in_batch = HashSet::new();
        for (index, record) in records {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    checked.outcomes.push(Outcome::rejected(index, None, &e));
                    continue;
                }
            };
            let id = Some(record.id.trim().to_owned()).filter(|i| !i.is_empty());
            match to_post(record, &ctx) {
                Err(e) => checked.outcomes.push(Outcome::rejected(index, id, &e)),
                Ok(c) if !in_batch.insert(c.post.id.clone()) => checked.repeats.push((index, c.post.id)),
                Ok(c) => checked.candidates.push((index, c)),
            }
        }
        checked
    }

    /// Each post's delivery, in order.
    async fn deliver(&self, posts: &[schema::Post]) -> Vec<Result<(), ingest::producer::ProduceError>> {
        match self.producer.enqueue_all(posts).await {
            Ok(in_flight) => in_flight.each_acknowledged().await.into_iter().map(|(_, r)| r).collect(),
            Err(e) => {
                // Enqueueing stopped part-way: the posts before it are in flight and may arrive;
                // none is answered accepted, and a re-send is collapsed by its key.
                tracing::warn!(error = %e, "the intake could not enqueue its batch");
                let keys: Vec<String> = posts.iter().map(schema::Post::key).collect();
                keys.into_iter().map(|key| Err(ingest::producer::ProduceError::Canceled { key })).collect()
            }
        }
    }
}

/// The answers so far, the records to look up, and the repeats within the batch.
#[derive(Default)]
struct Checked {
    outcomes: Vec<Outcome>,
    candidates: Vec<(usize, IntakePost)>,
    repeats: Vec<(usize, String)>,
}

/// A repeat within the batch: `duplicate` when its first copy was taken or known, else that
/// copy's rejection (a `not_delivered` first copy leaves the id to be sent again).
fn repeat_of(outcomes: &[Outcome], index: usize, id: String) -> Outcome {
    let first = outcomes.iter().find(|o| o.id.as_deref() == Some(id.as_str()));
    match first {
        Some(o) if o.status == Status::Rejected => Outcome { index, id: Some(id), ..o.clone() },
        _ => Outcome {
            index,
            id: Some(id),
            status: Status::Duplicate,
            reason: Some("the same id appears earlier in this batch".into()),
            kind: None,
        },
    }
}

fn duplicate(index: usize, id: String, same: bool) -> Outcome {
    let reason = if same {
        "sent before; nothing changed"
    } else {
        "sent before with other content; the first is kept (send corrections under a new id)"
    };
    Outcome { index, id: Some(id), status: Status::Duplicate, reason: Some(reason.into()), kind: None }
}

/// What a record says: text, time, places and category. A retry has the same hash.
fn content_hash(c: &IntakePost) -> u64 {
    let mut h = Sha256::new();
    for part in [c.post.text.as_str(), &c.post.created_at.timestamp().to_string(), c.category.as_deref().unwrap_or("")]
    {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for p in &c.post.places {
        h.update(p.as_str().as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn count(channel: &str, outcomes: &[Outcome]) {
    let t = Tally::of(outcomes);
    for (outcome, n) in [("accepted", t.accepted), ("duplicate", t.duplicate), ("rejected", t.rejected)] {
        if n > 0 {
            metrics::counter!("citypulse_intake_records_total", "channel" => channel.to_owned(), "outcome" => outcome)
                .increment(n);
        }
    }
}
