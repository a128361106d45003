//! Test helpers: a local server speaking the real APIs' formats (Mastodon timelines with `Link`
//! and X-RateLimit headers, a Reddit listing, an RSS feed) with scriptable failures, an in-process
//! Kafka (MockCluster) and a reader of `posts.raw`.
#![allow(dead_code)]

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ingest::crawl::Shared;
use ingest::polite::QuotaSpec;
use ingest::IngestSettings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use schema::config::SourcesConfig;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scripted answer that replaces the next normal response.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// 429, with this Retry-After value if any.
    TooMany(Option<String>),
    /// This 5xx status.
    Status(u16),
    /// A body that is not the API's JSON.
    Garbage,
}

#[derive(Debug, Default)]
pub struct ServerState {
    /// Status ids on the Mastodon timeline, ascending.
    pub statuses: Mutex<Vec<u64>>,
    /// (when, path and query) of every request.
    pub log: Mutex<Vec<(Instant, String)>>,
    pub script: Mutex<VecDeque<Scripted>>,
    /// Added to every Mastodon response.
    pub delay: Mutex<Duration>,
    /// Generated Reddit posts `p<i>`, oldest first; empty: serve the reddit_new.json fixture.
    pub reddit: Mutex<Vec<u64>>,
}

impl ServerState {
    pub fn requests(&self) -> Vec<(Instant, String)> {
        self.log.lock().unwrap().clone()
    }
    pub fn request_times(&self) -> Vec<Instant> {
        self.requests().into_iter().map(|(t, _)| t).collect()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/api/v1/timelines/tag/{tag}", get(mastodon_tag))
            .route("/api/v1/timelines/public", get(mastodon_public))
            .route("/r/{sub}/new.json", get(reddit))
            .route("/rss/{name}", get(feed))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestServer { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_statuses(&self, ids: impl IntoIterator<Item = u64>) {
        *self.state.statuses.lock().unwrap() = ids.into_iter().collect();
    }

    pub fn script(&self, items: impl IntoIterator<Item = Scripted>) {
        self.state.script.lock().unwrap().extend(items);
    }
}

/// Whether status `id` names a place (3 of 4 do), so `require_place` has something to filter.
pub fn names_place(id: u64) -> bool {
    id & 3 != 0
}

pub fn status_json(base: &str, id: u64) -> serde_json::Value {
    let text =
        if names_place(id) { format!("Kẹt xe ở Quận 1, bài {id}") } else { format!("Trời đẹp, bài {id}") };
    let created = chrono::DateTime::from_timestamp(1_732_000_000 + id as i64, 0).unwrap();
    serde_json::json!({
        "id": id.to_string(),
        "created_at": created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "in_reply_to_id": null,
        "sensitive": false,
        "spoiler_text": "",
        "visibility": "public",
        "language": "vi",
        "uri": format!("{base}/users/u{}/statuses/{id}", id % 7),
        "url": format!("{base}/@u{}/{id}", id % 7),
        "replies_count": 0,
        "reblogs_count": 1,
        "favourites_count": id % 5,
        "content": format!("<p>{text} <a href=\"{base}/tags/traffic\" class=\"mention hashtag\" rel=\"tag\">#<span>traffic</span></a></p>"),
        "reblog": null,
        "account": {"id": (id % 7).to_string(), "username": format!("u{}", id % 7), "acct": format!("u{}", id % 7)},
        "media_attachments": [], "mentions": [], "tags": [], "emojis": [], "card": null, "poll": null
    })
}

fn log(state: &ServerState, uri: String) -> Option<Scripted> {
    state.log.lock().unwrap().push((Instant::now(), uri));
    state.script.lock().unwrap().pop_front()
}

fn scripted(s: Scripted) -> Response {
    match s {
        Scripted::TooMany(retry_after) => {
            let mut h = HeaderMap::new();
            if let Some(v) = retry_after {
                h.insert("retry-after", HeaderValue::from_str(&v).unwrap());
            }
            (StatusCode::TOO_MANY_REQUESTS, h, "{\"error\":\"Too many requests\"}").into_response()
        }
        Scripted::Status(code) => (StatusCode::from_u16(code).unwrap(), "<html>oops</html>").into_response(),
        Scripted::Garbage => (StatusCode::OK, "<html><body>maintenance</body></html>").into_response(),
    }
}

async fn mastodon_tag(
    State(state): State<Arc<ServerState>>,
    Path(tag): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    mastodon(state, format!("/api/v1/timelines/tag/{tag}"), q).await
}

async fn mastodon_public(State(state): State<Arc<ServerState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    mastodon(state, "/api/v1/timelines/public".into(), q).await
}

/// Mastodon's paging: `min_id` gives the statuses right after it, `max_id` the ones right before,
/// neither the newest; newest first inside the page; `Link` next/prev.
async fn mastodon(state: Arc<ServerState>, path: String, q: HashMap<String, String>) -> Response {
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let script = log(&state, format!("{path}?{}", query.join("&")));
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(s) = script {
        return scripted(s);
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20).min(40);
    let all = state.statuses.lock().unwrap().clone();
    let mut page: Vec<u64> = if let Some(min) = q.get("min_id").and_then(|v| v.parse::<u64>().ok()) {
        all.iter().copied().filter(|id| *id > min).take(limit).collect()
    } else if let Some(max) = q.get("max_id").and_then(|v| v.parse::<u64>().ok()) {
        let older: Vec<u64> = all.iter().copied().filter(|id| *id < max).collect();
        older[older.len().saturating_sub(limit)..].to_vec()
    } else {
        all[all.len().saturating_sub(limit)..].to_vec()
    };
    page.reverse();
    let base = "https://mastodon.test";
    let body: Vec<serde_json::Value> = page.iter().map(|id| status_json(base, *id)).collect();
    let mut h = HeaderMap::new();
    if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
        let link = format!(
            "<https://mastodon.test{path}?max_id={oldest}>; rel=\"next\", <https://mastodon.test{path}?min_id={newest}>; rel=\"prev\""
        );
        h.insert("link", HeaderValue::from_str(&link).unwrap());
    }
    h.insert("x-ratelimit-limit", HeaderValue::from_static("300"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("299"));
    h.insert("x-ratelimit-reset", HeaderValue::from_static("2030-01-01T00:00:00.000Z"));
    (StatusCode::OK, h, axum::Json(body)).into_response()
}

/// Reddit's page size in the generated listings: small, so a poll needs several pages.
pub const REDDIT_PAGE: usize = 10;

pub fn reddit_created(i: u64) -> i64 {
    1_732_000_000 + i as i64
}

/// A listing of the generated posts older than `after`, newest first, in Reddit's format.
fn reddit_listing(ids: &[u64], after: Option<&str>) -> serde_json::Value {
    let older: Vec<u64> = match after.and_then(|a| a.strip_prefix("t3_p")).and_then(|a| a.parse::<u64>().ok()) {
        Some(a) => ids.iter().copied().filter(|i| *i < a).collect(),
        None => ids.to_vec(),
    };
    let page: Vec<u64> = older.iter().rev().take(REDDIT_PAGE).copied().collect();
    let children: Vec<serde_json::Value> = page
        .iter()
        .map(|i| {
            serde_json::json!({"kind": "t3", "data": {
                "id": format!("p{i}"), "name": format!("t3_p{i}"), "title": format!("Post {i} about District 3"),
                "selftext": "", "author": format!("user{}", i % 3), "created_utc": reddit_created(*i) as f64,
                "permalink": format!("/r/saigon/comments/p{i}/post/"), "ups": 1, "num_comments": 0, "subreddit": "saigon"
            }})
        })
        .collect();
    let next = (older.len() > REDDIT_PAGE).then(|| format!("t3_p{}", page[page.len() - 1]));
    serde_json::json!({"kind": "Listing", "data": {"after": next, "dist": page.len(), "children": children, "before": null}})
}

async fn reddit(
    State(state): State<Arc<ServerState>>,
    Path(sub): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after = q.get("after").cloned();
    let logged = match &after {
        Some(a) => format!("/r/{sub}/new.json?after={a}"),
        None => format!("/r/{sub}/new.json"),
    };
    if let Some(s) = log(&state, logged) {
        return scripted(s);
    }
    let generated = state.reddit.lock().unwrap().clone();
    if !generated.is_empty() {
        return axum::Json(reddit_listing(&generated, after.as_deref())).into_response();
    }
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-used", HeaderValue::from_static("4"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("96.0"));
    h.insert("x-ratelimit-reset", HeaderValue::from_static("420"));
    h.insert("content-type", HeaderValue::from_static("application/json; charset=UTF-8"));
    (StatusCode::OK, h, fixture("reddit_new.json")).into_response()
}

/// Serves a fixture feed with an ETag; answers 304 to a request that presents it.
async fn feed(State(state): State<Arc<ServerState>>, Path(name): Path<String>, req: HeaderMap) -> Response {
    let conditional = req.get("if-none-match").is_some_and(|v| v == "\"v1\"");
    let logged = if conditional { format!("/rss/{name} if-none-match") } else { format!("/rss/{name}") };
    if let Some(s) = log(&state, logged) {
        return scripted(s);
    }
    if conditional {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut h = HeaderMap::new();
    h.insert("etag", HeaderValue::from_static("\"v1\""));
    h.insert("content-type", HeaderValue::from_static("application/rss+xml; charset=UTF-8"));
    (StatusCode::OK, h, fixture(&name)).into_response()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub fn places() -> schema::config::PlacesConfig {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/places.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

/// A Kafka for one test: in-process (MockCluster) or the tansu broker of `make test`, with its own
/// raw topic (3 partitions).
pub struct Kafka {
    pub cluster: Option<rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
    pub brokers: String,
    pub topic: String,
}

impl Kafka {
    pub fn start() -> Kafka {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        cluster.create_topic("posts.raw", 3, 1).unwrap();
        let brokers = cluster.bootstrap_servers();
        Kafka { cluster: Some(cluster), brokers, topic: "posts.raw".into() }
    }

    /// The tansu broker from `CITYPULSE_TEST_KAFKA_BROKERS` with a fresh topic; `None` (skip) when
    /// unset, a failure when `CITYPULSE_REQUIRE_SERVICES` is set.
    pub async fn tansu() -> Option<Kafka> {
        let brokers = match std::env::var("CITYPULSE_TEST_KAFKA_BROKERS") {
            Ok(b) if !b.is_empty() => b,
            _ if std::env::var_os("CITYPULSE_REQUIRE_SERVICES").is_some() => {
                panic!("CITYPULSE_TEST_KAFKA_BROKERS is not set but CITYPULSE_REQUIRE_SERVICES is")
            }
            _ => {
                eprintln!("skipped: CITYPULSE_TEST_KAFKA_BROKERS not set");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let topic = format!("ingest_test_{}_{}", std::process::id(), nanos % 1_000_000_000);
        let admin: rdkafka::admin::AdminClient<_> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let new = rdkafka::admin::NewTopic::new(&topic, 3, rdkafka::admin::TopicReplication::Fixed(1));
        for r in admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new()).await.unwrap() {
            r.unwrap();
        }
        Some(Kafka { cluster: None, brokers, topic })
    }
}

/// Settings for a test: the given sources TOML, fast backoff unless the TOML sets `[defaults]`.
pub fn settings(sources_toml: &str, k: &Kafka, state_dir: &std::path::Path) -> IngestSettings {
    let sources: SourcesConfig = toml::from_str(sources_toml).unwrap();
    let mut kafka = schema::config::services::KafkaConfig {
        brokers: k.brokers.clone(),
        topic_raw: k.topic.clone(),
        ..Default::default()
    };
    kafka.delivery_timeout_ms = 10_000;
    IngestSettings {
        sources,
        places: places(),
        kafka,
        state_dir: state_dir.to_owned(),
        limits: schema::Limits::default(),
        zone: chrono_tz::Asia::Ho_Chi_Minh,
        default_quota: QuotaSpec { requests_per_second: 50.0, burst: 5 },
    }
}

pub fn detached_health() -> stagekit::StageHealth {
    stagekit::StageHealth::detached(stagekit::StageName::Ingest)
}

pub fn shared(settings: &IngestSettings) -> Arc<Shared> {
    ingest::build_shared(settings, schema::author::AuthorHasher::development(), detached_health()).unwrap()
}

/// How many messages the raw topic holds (the sum of its partitions' high watermarks). Exact once
/// the producer's sends were acknowledged, without a reader's settle window.
pub async fn topic_len(kafka: &Kafka) -> i64 {
    let brokers = kafka.brokers.clone();
    let topic = kafka.topic.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        (0..3).map(|p| consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)).unwrap().1).sum()
    })
    .await
    .unwrap()
}

/// Reads `posts.raw` from the beginning of every partition (no consumer group: no join delay)
/// until `at_least` messages arrived, then `settle` longer to catch extras. Posts in arrival order.
pub async fn read_posts(kafka: &Kafka, at_least: usize, settle: Duration) -> Vec<schema::Post> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(&kafka.topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut posts = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut settle_until: Option<tokio::time::Instant> = None;
    loop {
        let until = settle_until.map_or(deadline, |s| s.min(deadline));
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Ok(Ok(msg)) => {
                let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
                let post: schema::Post = schema::decode(msg.payload().unwrap(), &schema::Limits::default()).unwrap();
                assert_eq!(post.key(), key);
                posts.push(post);
            }
            Ok(Err(e)) => panic!("consume: {e}"),
            Err(_) => break,
        }
        if posts.len() >= at_least && settle_until.is_none() {
            settle_until = Some(tokio::time::Instant::now() + settle);
        }
    }
    posts
}
