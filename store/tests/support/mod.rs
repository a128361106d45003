//! Store test helpers: a fresh migrated database per test, and AnalyzedPost builders.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Timelike, Utc};
use clickhouse::Row;
use schema::{
    AnalyzedPost, Lang, ModelInfo, PlaceId, Sentiment, SentimentProbabilities, SourceId, TopicId, TopicScore,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use store::{CityZone, Database};

pub const ZONE: &str = "Asia/Ho_Chi_Minh";

/// A migrated database of its own, on one server or on the test cluster; dropped by
/// [`TestDb::drop_db`].
pub struct TestDb {
    pub client: clickhouse::Client,
    pub db: Database,
    pub zone: CityZone,
    /// On a cluster, a client per replica (the first is `client`'s server); empty on one server.
    pub replicas: Vec<clickhouse::Client>,
}

impl TestDb {
    pub async fn new(url: &str, prefix: &str) -> TestDb {
        let client = clickhouse::Client::default().with_url(url).with_validation(false);
        let db = Database::new(&super::common::unique_name(prefix)).expect("db name");
        TestDb::migrated(client, db, Vec::new()).await
    }

    /// The same on the two-replica cluster of scripts/cluster.sh, talking to its first replica.
    pub async fn on_cluster(prefix: &str) -> Option<TestDb> {
        let cluster = super::common::cluster()?;
        let client_of = |url: &String| {
            store::cluster::client_options(clickhouse::Client::default().with_url(url).with_validation(false))
        };
        let replicas: Vec<clickhouse::Client> = cluster.urls.iter().map(client_of).collect();
        let db = Database::new(&super::common::unique_name(prefix)).expect("db name");
        let db = db.on_cluster(&cluster.name).expect("cluster name");
        Some(TestDb::migrated(replicas[0].clone(), db, replicas).await)
    }

    async fn migrated(client: clickhouse::Client, db: Database, replicas: Vec<clickhouse::Client>) -> TestDb {
        let zone = CityZone::new(ZONE).expect("zone");
        store::migrate(&client, &db, zone).await.expect("migrate");
        TestDb { client, db, zone, replicas }
    }

    /// Waits until every replica has read the whole replication log and done every fetch and merge
    /// in it, so a read through a Distributed table sees the same rows whichever replica answers.
    /// (18.16's `SYSTEM SYNC REPLICA` alone is not enough: it waits for the queue only, and a
    /// replica just restarted may not have pulled the log into its queue yet. A pointer and an index
    /// both 0 is a table whose log is empty.)
    pub async fn settle(&self) {
        let caught_up = format!(
            "SELECT toUInt64(countIf(queue_size = 0 AND active_replicas = total_replicas \
             AND (log_pointer > log_max_index OR log_pointer + log_max_index = 0))), \
             toUInt64(count()) FROM system.replicas WHERE database = '{}'",
            self.db
        );
        for replica in &self.replicas {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let (done, all): (u64, u64) = replica.query(&caught_up).fetch_one().await.expect(&caught_up);
                if done == all {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "replicas of {} not caught up in 60 s", self.db);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// `OPTIMIZE TABLE ... FINAL` on the table holding the rows (on a cluster the merge is
    /// replicated; [`TestDb::settle`] waits for it).
    pub async fn optimize(&self, table: &str) {
        let sql = format!("OPTIMIZE TABLE {}.{} FINAL", self.db, self.db.stored(table));
        self.client.query(&sql).execute().await.expect(&sql);
    }

    pub async fn drop_db(&self) {
        let sql = format!("DROP DATABASE IF EXISTS {}{}", self.db, self.db.on_cluster_clause());
        self.client.query(&sql).execute().await.expect("drop database");
    }

    /// A one-value query, `DB.` standing for the database, once the replicas have settled.
    pub async fn scalar<T: clickhouse::RowOwned + clickhouse::RowRead>(&self, sql: &str) -> T {
        self.settle().await;
        self.client.query(&sql.replace("DB.", &format!("{}.", self.db))).fetch_one::<T>().await.expect(sql)
    }
}

/// Deterministic pseudo-random numbers (no extra dependency; the same stream every run).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("timestamp")
}

/// A post with the given labels. Probabilities are multiples of 1/64 so every score is exact in f32.
// Test builder: one positional argument per field under test reads better than a builder here.
#[allow(clippy::too_many_arguments)]
pub fn post(
    source: &str,
    id: &str,
    author: &str,
    created: DateTime<Utc>,
    analyzed: DateTime<Utc>,
    probs: (u8, u8, u8),
    topics: &[&str],
    places: &[&str],
    model_version: &str,
) -> AnalyzedPost {
    let p = |x: u8| f32::from(x) / 64.0;
    let probabilities = SentimentProbabilities { negative: p(probs.0), neutral: p(probs.1), positive: p(probs.2) };
    AnalyzedPost {
        id: id.into(),
        source: SourceId::new(source).expect("source"),
        url: Some(format!("https://example.org/{source}/{id}")),
        author: author.into(),
        lang_declared: Some("vi".into()),
        created_at: created,
        fetched_at: created + chrono::Duration::seconds(30),
        places: places.iter().map(|p| PlaceId::new(*p).expect("place")).collect(),
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: format!("bài đăng {id} về {}", topics.join(", ")),
        lang: Lang::Vi,
        sentiment: Sentiment::from_probabilities(probabilities),
        topics: topics.iter().map(|t| TopicScore { id: TopicId::new(*t).expect("topic"), score: 0.75 }).collect(),
        model: ModelInfo { id: "multilingual-e5-small".into(), version: model_version.into() },
        analyzed_at: analyzed,
        embedding: None,
        search: None,
    }
}

pub const TOPICS: [&str; 5] = ["flooding", "traffic", "air_quality", "public_transport", "other"];
pub const PLACES: [&str; 4] = ["quan_1", "binh_thanh", "thu_duc", "go_vap"];
pub const SOURCES: [&str; 3] = ["mastodon_social", "reddit_saigon", "vnexpress_rss"];

/// Random labels: probabilities out of 64, 1..=3 distinct topics, 0..=2 distinct places.
pub fn random_labels(rng: &mut Lcg) -> ((u8, u8, u8), Vec<&'static str>, Vec<&'static str>) {
    let neg = rng.below(65) as u8;
    let neu = rng.below(u64::from(65 - neg)) as u8;
    let probs = (neg, neu, 64 - neg - neu);
    let mut topics = Vec::new();
    for _ in 0..=rng.below(3) {
        let t = TOPICS[rng.below(TOPICS.len() as u64) as usize];
        if !topics.contains(&t) {
            topics.push(t);
        }
    }
    let mut places = Vec::new();
    for _ in 0..rng.below(3) {
        let p = PLACES[rng.below(PLACES.len() as u64) as usize];
        if !places.contains(&p) {
            places.push(p);
        }
    }
    (probs, topics, places)
}

pub type Cell = (u32, String, String, String, String, String);

#[derive(Debug, Row, Deserialize)]
pub struct TrendCell {
    bucket: u32,
    topic: String,
    place: String,
    source: String,
    sentiment: String,
    model_version: String,
    posts: i64,
    score_sum: f64,
}

/// Builds the stream: every post once, some twice in a row, ~30% re-analysed (later, with new labels),
/// some re-analysed twice, old analyses redelivered after new ones, and a replayed stretch at the end.
pub fn stream(n: usize, seed: u64) -> (Vec<AnalyzedPost>, HashMap<String, AnalyzedPost>) {
    let mut rng = Lcg(seed);
    let base = 1_764_000_000; // 2025-11-24T16:00:00Z, 23:00 in Ho Chi Minh City: days straddle midnight
    let mut first = Vec::new();
    let mut later = Vec::new();
    let mut stale = Vec::new();
    for i in 0..n {
        let source = SOURCES[rng.below(3) as usize];
        let id = format!("{i:05}");
        let author = format!("author{:03}", rng.below(80));
        let created = ts(base + rng.below(3 * 86_400) as i64);
        let (probs, topics, places) = random_labels(&mut rng);
        let a1 =
            post(source, &id, &author, created, created + chrono::Duration::seconds(60), probs, &topics, &places, "v1");
        first.push(a1.clone());
        if rng.below(10) < 3 {
            first.push(a1.clone());
        }
        if rng.below(10) < 3 {
            let (p2, t2, _) = random_labels(&mut rng);
            let a2 =
                post(source, &id, &author, created, created + chrono::Duration::seconds(3600), p2, &t2, &places, "v2");
            if rng.below(4) == 0 {
                let (p3, t3, _) = random_labels(&mut rng);
                let a3 = post(
                    source,
                    &id,
                    &author,
                    created,
                    created + chrono::Duration::seconds(7200),
                    p3,
                    &t3,
                    &places,
                    "v2",
                );
                later.push(a2.clone());
                stale.push(a2);
                later.push(a3);
            } else {
                later.push(a2);
            }
            if rng.below(3) == 0 {
                stale.push(a1);
            }
        }
    }
    let replay: Vec<AnalyzedPost> = first[first.len() / 3..first.len() / 2].to_vec();
    let all: Vec<AnalyzedPost> = first.into_iter().chain(later).chain(stale).chain(replay).collect();
    let mut latest: HashMap<String, AnalyzedPost> = HashMap::new();
    for p in &all {
        match latest.get(&p.key()) {
            Some(q) if q.analyzed_at >= p.analyzed_at => {}
            _ => {
                latest.insert(p.key(), p.clone());
            }
        }
    }
    (all, latest)
}

pub fn expected_cells(latest: &HashMap<String, AnalyzedPost>, hourly: bool) -> BTreeMap<Cell, (i64, f64)> {
    let tz: chrono_tz::Tz = ZONE.parse().expect("tz");
    let mut cells: BTreeMap<Cell, (i64, f64)> = BTreeMap::new();
    for p in latest.values() {
        let local = p.created_at.with_timezone(&tz);
        let bucket = if hourly {
            let hour: DateTime<chrono_tz::Tz> =
                tz.from_local_datetime(&local.date_naive().and_hms_opt(local.hour(), 0, 0).expect("hour")).unwrap();
            hour.timestamp() as u32
        } else {
            (local.date_naive() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as u32
        };
        let topics = std::iter::once("*".to_owned()).chain(p.topics.iter().map(|t| t.id.to_string()));
        for topic in topics {
            for place in std::iter::once("*".to_owned()).chain(p.places.iter().map(|x| x.to_string())) {
                let key = (
                    bucket,
                    topic.clone(),
                    place,
                    p.source.to_string(),
                    p.sentiment.label.as_str().to_owned(),
                    p.model.version.clone(),
                );
                let cell = cells.entry(key).or_default();
                cell.0 += 1;
                cell.1 += f64::from(p.sentiment.score);
            }
        }
    }
    cells
}

pub async fn actual_cells(t: &TestDb, hourly: bool) -> BTreeMap<Cell, (i64, f64)> {
    t.settle().await;
    let table = if hourly { "trends_hourly" } else { "trends_daily" };
    cells_from(&t.client, &format!("{}.{table}", t.db), hourly).await
}

/// The cells of `table` (`db.name`, an hourly or a daily trend table) as `client`'s server sees it.
pub async fn cells_from(client: &clickhouse::Client, table: &str, hourly: bool) -> BTreeMap<Cell, (i64, f64)> {
    let bucket = if hourly { "toUInt32(bucket)" } else { "toUInt32(toUInt16(day))" };
    // Cells whose posts cancelled to 0 must also have a score sum of exactly 0: keep them if not.
    let sql = format!(
        "SELECT {bucket} AS b, topic, place, source, sentiment, model_version, sum(posts) AS n, sum(score_sum) AS s \
         FROM {table} GROUP BY b, topic, place, source, sentiment, model_version HAVING n != 0 OR s != 0"
    );
    let rows: Vec<TrendCell> = client.query(&sql).fetch_all().await.expect("cells");
    rows.into_iter()
        .map(|r| ((r.bucket, r.topic, r.place, r.source, r.sentiment, r.model_version), (r.posts, r.score_sum)))
        .collect()
}

/// The store consumer's settings for a test on a mock cluster: `group` reading `posts.analyzed`,
/// dead letters to `posts.dlq`, batches of `batch_max_rows` or `batch_period`, short sessions (the
/// mock's coordinator can hold a rebalance for a whole session timeout while members rejoin) and
/// quick publish retries.
pub fn consumer_settings(
    brokers: &str,
    group: &str,
    batch_max_rows: usize,
    batch_period: std::time::Duration,
) -> store::ConsumerSettings {
    store::ConsumerSettings {
        kafka: schema::config::services::KafkaConfig {
            brokers: brokers.to_owned(),
            store_group: group.to_owned(),
            topic_analyzed: "posts.analyzed".into(),
            topic_dlq: "posts.dlq".into(),
            delivery_timeout_ms: 10_000,
            retry_max_backoff_ms: 200,
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 500,
            ..Default::default()
        },
        batch_max_rows,
        batch_max_bytes: 1 << 20,
        batch_period,
        limits: schema::Limits::default(),
    }
}

/// The store's consuming loop as a task, with a health registry of its own.
pub fn spawn_consumer(
    settings: store::ConsumerSettings,
    writer: store::Writer,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<Result<store::RunStats, store::StoreError>> {
    let health = stagekit::StageHealth::detached(stagekit::StageName::Store);
    tokio::spawn(store::consume(settings, writer, health, shutdown))
}
