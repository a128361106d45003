//! Store: lands analysed posts in ClickHouse and answers trend questions about them.
//!
//! Modules and what each owns:
//! - [`migrate`]: the numbered `.sql` migrations under `store/migrations/` (embedded), applied in
//!   order and recorded in `schema_migrations`.
//! - [`writer`]: [`Writer`], which stores batches of [`schema::AnalyzedPost`] so the trend tables
//!   stay exact, with retry classification, backoff and metrics.
//! - [`service`]: [`run`], the store stage's entry point: migrations, then the consumer with the
//!   health watch and retention beside it.
//! - [`consumer`]: [`consume`], Kafka `posts.analyzed` → [`Writer`], offsets stored only after
//!   ClickHouse accepted the batch, undecodable or refused posts → `posts.dlq`.
//! - [`dlq`]: reading `posts.dlq` and replaying store-stage records through the [`Writer`].
//! - [`replay_raw`]: replaying analyzer-stage records by re-producing their `posts.raw` message.
//! - [`intake_seen`]: the ids each first-party intake channel has sent, for its `duplicate` answers.
//! - [`query`]: [`Queries`], the trend, top-posts and distinct-author queries (CLI, alerts, HTTP).
//! - [`searches`]: searches saved through the API, and re-indexing posts stored before them.
//! - [`retention`]: drops `posts` and trend partitions older than the configured days.
//! - [`upkeep`]: the service's periodic duties: the ClickHouse reachability watch behind /healthz
//!   and scheduled retention.
//! - [`rows`]: the `posts` row type; [`ident`]: the validated names spliced into SQL;
//!   [`error`]: errors and the transient/permanent classification of ClickHouse failures.
//!
//! # Why the trend tables are exact
//!
//! Materialized views fire on every INSERT into `posts` and can never take a count back, and the
//! pipeline is at-least-once, so exactness is the writer's job:
//!
//! 1. `posts` is a `VersionedCollapsingMergeTree(sign, version)` ordered by the post key. Each post
//!    has at most one live version: a `+1` row not cancelled by a `−1` row of the same version.
//! 2. Before each insert the writer reads key, version, sign and a content hash of the stored rows
//!    of the batch's keys. A redelivery (same content hash) or an older analysis writes nothing. A
//!    re-analysis with other labels writes a `−1` copy of the stored row (its old labels) and the new
//!    row as `+1` at the next version, in the same INSERT. A retry repeats the lookup, so a
//!    half-acknowledged insert is not written twice. The lookup reads only the UTC-day partitions
//!    the batch's posts were published on, which assumes a post's `created_at` never changes
//!    between analyses (it is the source's publication time).
//! 3. The views (`trends_hourly_mv`, `trends_daily_mv`) multiply `posts` and `score_sum` by `sign`
//!    into `SummingMergeTree` tables: a cancelling row subtracts exactly what its original added.
//!    Each post adds one row per (topic or `*`) × (place or `*`) cell, so any slice — per topic, per
//!    place, per source, a topic's places — is a plain sum with no double counting of multi-label
//!    posts (`*` means "all"; ids are `[a-z0-9_]` and can never be `*`).
//! 4. Averages and net sentiment ((pos − neg) / posts) are computed at query time from the sums;
//!    distinct authors are counted from `posts` (`FINAL`), never summed.
//!
//! This needs one writer per key at a time: Kafka gives it (a key's partition has one consumer in
//! the group). Posts published before the posts retention horizon are not written, since their
//! day may be dropped already and a redelivery could not be recognised. Remaining hole: a
//! ClickHouse crash between writing a `posts` part and the views' parts of the same INSERT.

pub mod cluster;
pub mod consumer;
pub mod corrections;
pub mod dlq;
pub mod error;
pub mod ident;
pub mod intake_seen;
pub mod migrate;
pub mod query;
pub mod replay_raw;
pub mod retention;
pub mod rows;
pub mod search_cache;
pub mod searches;
pub mod service;
pub mod upkeep;
pub mod writer;

pub use consumer::{consume, writer_for, ConsumerSettings, RunStats};
pub use error::{Backoff, ClickHouseError, Retry, StoreError};
pub use ident::{CityZone, Database};
pub use intake_seen::{IntakeSeen, SeenRow};
pub use migrate::{migrate, MigrateReport, MIGRATIONS};
pub use query::{Dimension, Granularity, PageAfter, PostFilter, Queries, TopPost, TrendQuery, TrendRow};
pub use retention::{apply_retention, RetentionReport};
pub use search_cache::SeriesStats;
pub use service::{migrate_when_reachable, run, StoreDeps, StoreSettings};
pub use upkeep::{run_retention, watch_health, Retention};
pub use writer::{Health, Rejected, WriteReport, Writer, WriterConfig};

use schema::config::services::ClickHouseConfig;

/// A ClickHouse client for `cfg`: validation off (18.16 lacks what it needs), password from the
/// environment variable the config names (unset: empty password).
pub fn client(cfg: &ClickHouseConfig) -> clickhouse::Client {
    let password = std::env::var(&cfg.password_env).unwrap_or_default();
    let client = clickhouse::Client::default()
        .with_url(cfg.url.as_str().trim_end_matches('/'))
        .with_user(cfg.user.as_str())
        .with_password(password)
        .with_validation(false);
    match cfg.cluster {
        Some(_) => cluster::client_options(client),
        None => client,
    }
}
