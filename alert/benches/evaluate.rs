//! Alert evaluation benchmark against a real ClickHouse (CITYPULSE_TEST_CLICKHOUSE_URL; skipped
//! without it). Not a test: it prints numbers, and asserts only that its rules are valid and that
//! every cycle gives the same events.
//!
//! One evaluation cycle of 20 rules (every kind: negative_share, volume_spike, net_sentiment_drop
//! with each topic its own key, `"*"`, one topic, `per_place`, one place; weekly, daily and no
//! seasonality; 60 and 180 minute windows; 672 hour baselines; plus 3 watch_terms rules) over the
//! shipped topics (config/topics.toml + `other`) and places (config/places.toml), on
//! `CITYPULSE_BENCH_POSTS` [10000000] posts spread over `CITYPULSE_BENCH_DAYS` [90] days with a
//! daily rhythm (quiet nights), 1–3 topics and 0–2 places a post, about a quarter negative, texts
//! carrying the Vietnamese terms the watch_terms rules look for, and a flood in District 7 in the
//! last 45 minutes so that some rules fire (and read their evidence posts).
//!
//! Measured: the wall time of `alert::evaluate_once(.., dry_run = true)` (1 warm-up, then
//! `CITYPULSE_BENCH_RUNS` [5] runs: min / median / max), the CPU seconds ClickHouse's query threads
//! spent in the measured runs (`system.events`, as in store's bench: on a shared machine that is the
//! stable figure), this process's CPU (decoding rows, matching terms), rows read, keys judged and
//! events. The target is ≤ 2 s a cycle. Then (unless
//! `CITYPULSE_BENCH_BREAKDOWN=0`) each rule alone: its ClickHouse read (`observe::counts`, or
//! `observe::window_posts` for watch_terms) and the whole rule through `engine::Engine`, to show
//! where the time goes.
//!
//! Loading: rows go straight into `posts` with the clickhouse crate (batches of
//! `CITYPULSE_BENCH_BATCH` [200000], in publication order, so a batch touches two or three day
//! partitions), not through store's Writer, whose per-batch lookup of stored keys would make 10M
//! posts take far longer; the materialized trend views still run. Progress goes to stderr.
//! Generating 10M posts takes a while, so `CITYPULSE_BENCH_KEEP_DB=1` keeps the database
//! (`CITYPULSE_BENCH_DB` [cp_bench_alert]) and reuses it on the next run when it already holds the
//! same number of posts over the same days (and evaluates as of that data's end, whenever it was
//! loaded). Without it a fresh `cp_bench_alert_<pid>` is made and dropped.
//!
//! Run: `CITYPULSE_TEST_CLICKHOUSE_URL=http://127.0.0.1:18123 cargo bench -p alert --bench evaluate`
//! (release) or, quicker to build, `cargo test -p alert --bench evaluate` (dev profile: dependencies
//! are optimised anyway, but schema's term matcher and this crate are not).

use alert::deliver::RetryPolicy;
use alert::engine::Engine;
use alert::lifecycle::OpenAlerts;
use alert::notify::Notifiers;
use alert::observe;
use alert::window::{floor_minute, Windows};
use alert::{AlertDeps, AlertSettings};
use chrono::{DateTime, Duration as ChronoDuration, Timelike, Utc};
use chrono_tz::Tz;
use schema::config::alerts::{AlertRule, RuleKind, RuleTopic};
use schema::config::{AlertsConfig, Config};
use schema::{
    AnalyzedPost, Engagement, Lang, ModelInfo, PlaceId, Sentiment, SentimentProbabilities, SourceId, TopicId,
    TopicScore,
};
use std::path::Path;
use std::time::{Duration, Instant};
use store::rows::PostRow;
use store::{CityZone, Database};

/// The target for one cycle on this machine.
const TARGET_S: f64 = 2.0;

const SOURCES: [&str; 5] = ["mastodon_social", "reddit", "vnexpress_thoisu", "tuoitre_tphcm", "bluesky"];

/// Posts an hour by local hour of day, relative: quiet nights, morning and evening peaks.
const HOUR_PROFILE: [f64; 24] = [
    0.25, 0.15, 0.10, 0.10, 0.15, 0.35, 0.70, 1.20, 1.40, 1.20, 1.00, 1.00, 1.10, 0.90, 0.90, 1.00, 1.10, 1.30, 1.50,
    1.60, 1.50, 1.20, 0.80, 0.45,
];

/// Relative weights of the catalogue's topics in config order (cycled), `other` last.
const TOPIC_WEIGHTS: [f64; 11] = [20.0, 12.0, 6.0, 7.0, 6.0, 8.0, 5.0, 7.0, 6.0, 8.0, 5.0];
const OTHER_WEIGHT: f64 = 10.0;

/// Texts by first topic; some carry the terms the watch_terms rules look for. Others get the generic ones.
fn texts_for(topic: &str) -> &'static [&'static str] {
    match topic {
        "flooding" => &[
            "Mưa lớn chiều nay, đường Phan Đăng Lưu ngập sâu tới gối, xe máy chết máy hàng loạt",
            "triều cường dâng cao, nước tràn vào nhà dân ven sông, bà con phải kê đồ lên cao",
            "duong Le Duc Tho ngap qua troi sau con mua chieu, ai di lam nho tranh",
            "Trạm bơm chạy cả đêm nên sáng nay nước rút nhanh, đường đã thông",
            "Street flooded up to the knees after the downpour, pumps are too slow",
        ],
        "traffic" => &[
            "Kẹt xe cứng ngắc ở vòng xoay Phú Lâm giờ tan tầm, nhích từng chút một",
            "ket xe tren duong Ly Thuong Kiet tu sang toi gio, mong co CSGT phan luong",
            "Đi metro đi làm khỏi lo kẹt xe giờ cao điểm, tiện thật sự",
            "Motorbike accident near the Saigon Bridge this morning, traffic backed up",
        ],
        "utilities" => &[
            "Khu mình mất điện từ sáng tới giờ, không có thông báo trước",
            "cup nuoc ca tuan nay o phuong 15, phai mua nuoc binh",
            "Điện lực báo lịch cắt điện bảo trì cuối tuần này",
        ],
        "public_safety" => &[
            "Cháy nhà trong hẻm sâu, xe cứu hỏa khó tiếp cận, may không ai bị thương",
            "bị giật điện thoại khi đang chạy xe trên đường Nguyễn Văn Linh",
            "Công an phường tuần tra ban đêm, khu này yên tâm hơn hẳn",
        ],
        _ => &[
            "Xếp hàng ở UBND phường cả buổi sáng mới nộp được hồ sơ",
            "Bệnh viện quá tải, bệnh nhân phải nằm ghép, chờ khám rất lâu",
            "Học phí trường tư tăng mỗi năm, phụ huynh than trời",
            "Giá cả chợ Bến Thành tăng mạnh dịp cuối năm",
            "Cổng dịch vụ công trực tuyến chạy chậm, nộp mãi không được",
            "Công viên mới bên kênh Nhiêu Lộc sạch đẹp, chiều nào cũng đông người",
        ],
    }
}

const TAIL: &str = " Mong thành phố sớm có giải pháp lâu dài cho khu vực này, người dân đã chờ quá lâu rồi.";

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn env_flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// splitmix64: a cheap, seedless, well-mixed hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from `h`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks an index by cumulative weights.
fn pick(cumulative: &[f64], u: f64) -> usize {
    let x = u * cumulative.last().copied().unwrap_or(1.0);
    cumulative.partition_point(|&c| c <= x).min(cumulative.len() - 1)
}

fn cumulate(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    weights
        .into_iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

/// The synthetic city: which post is published when, about what, where, in which mood.
struct City {
    topics: Vec<String>,
    topic_cum: Vec<f64>,
    places: Vec<String>,
    place_cum: Vec<f64>,
    /// First post index of each hour (len = hours + 1), and the hours' start (unix seconds).
    hour_first: Vec<usize>,
    start: i64,
    /// Posts before this index are ordinary; the rest are the incident.
    ordinary: usize,
    n: usize,
    end: i64,
}

impl City {
    fn new(topics: Vec<String>, places: Vec<String>, tz: Tz, n: usize, days: usize, end: i64) -> City {
        let mut topic_cum = cumulate(topics.iter().enumerate().map(|(i, _)| TOPIC_WEIGHTS[i % TOPIC_WEIGHTS.len()]));
        let last = topic_cum.last().copied().unwrap_or(0.0);
        topic_cum.push(last + OTHER_WEIGHT);
        let mut topics = topics;
        topics.push("other".into());
        // Zipf-like: the whole city and the central districts are named most.
        let place_cum = cumulate((0..places.len()).map(|r| 1.0 / (r as f64 + 1.0).powf(0.8)));
        let hours = days * 24;
        let start = end - hours as i64 * 3600;
        let incident = (n / hours / 8).max(50).min(n / 10);
        let ordinary = n - incident;
        let weights: Vec<f64> = (0..hours)
            .map(|h| {
                let t = DateTime::from_timestamp(start + h as i64 * 3600, 0).unwrap_or_default().with_timezone(&tz);
                let day = (h / 24) as u64;
                let weekend = match chrono::Datelike::weekday(&t) {
                    chrono::Weekday::Sat => 0.9,
                    chrono::Weekday::Sun => 0.8,
                    _ => 1.0,
                };
                // Day-to-day and hour-to-hour noise, so baselines have a spread.
                let noise = (0.85 + 0.3 * unit(mix(day ^ 0xD4))) * (0.9 + 0.2 * unit(mix(h as u64 ^ 0x40)));
                HOUR_PROFILE[t.hour() as usize] * weekend * noise
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut hour_first = Vec::with_capacity(hours + 1);
        let mut acc = 0.0;
        hour_first.push(0);
        for w in &weights {
            acc += w;
            hour_first.push(((acc / total) * ordinary as f64).round() as usize);
        }
        City { topics, topic_cum, places, place_cum, hour_first, start, ordinary, n, end }
    }

    /// Post number `i` (0-based, in publication order).
    fn post(&self, i: usize) -> AnalyzedPost {
        let h = mix(i as u64);
        let (created, topics, places, p_neg) = if i < self.ordinary {
            let hour = self.hour_first.partition_point(|&f| f <= i) - 1;
            let (first, next) = (self.hour_first[hour], self.hour_first[hour + 1]);
            let count = (next - first).max(1) as i64;
            let step = 3600 / count;
            let offset = (i - first) as i64 * 3600 / count + (h % step.max(1) as u64) as i64;
            let created = self.start + hour as i64 * 3600 + offset.min(3599);
            let mut topics: Vec<usize> = Vec::with_capacity(3);
            let how_many = match h % 20 {
                0..=10 => 1,
                11..=17 => 2,
                _ => 3,
            };
            let other = self.topics.len() - 1;
            for k in 0..how_many {
                let t = pick(&self.topic_cum, unit(mix(h ^ ((k as u64 + 1) * 0x51))));
                if t == other {
                    if k == 0 {
                        topics.push(other);
                        break;
                    }
                    continue;
                }
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
            let n_places = match (h >> 20) % 20 {
                0..=7 => 0,
                8..=16 => 1,
                _ => 2,
            };
            let mut places: Vec<usize> = Vec::with_capacity(2);
            for k in 0..n_places {
                let p = pick(&self.place_cum, unit(mix(h ^ ((k as u64 + 1) * 0x9a))));
                if !places.contains(&p) {
                    places.push(p);
                }
            }
            let t0 = self.topics[topics[0]].as_str();
            let p_neg = match t0 {
                "traffic" | "flooding" => 0.33,
                "public_safety" | "utilities" => 0.30,
                "other" => 0.15,
                _ => 0.20,
            };
            (
                created,
                topics.iter().map(|&t| self.topics[t].clone()).collect::<Vec<_>>(),
                places.iter().map(|&p| self.places[p].clone()).collect::<Vec<_>>(),
                p_neg,
            )
        } else {
            // The incident: a flood in District 7 and along Nguyễn Hữu Cảnh, the last 45 minutes.
            let (j, count) = ((i - self.ordinary) as i64, (self.n - self.ordinary).max(1) as i64);
            let created = self.end - 45 * 60 + j * 45 * 60 / count;
            let place = if j % 3 == 2 { "nguyen_huu_canh" } else { "district_7" };
            let places = self.places.iter().filter(|p| p.as_str() == place).cloned().collect::<Vec<_>>();
            (created, vec!["flooding".to_owned()], places, 0.8)
        };
        let u = unit(mix(h ^ 0x5e));
        let (negative, neutral, positive) = if u < p_neg {
            (0.70, 0.20, 0.10)
        } else if u < p_neg + (1.0 - p_neg) * 0.6 {
            (0.15, 0.70, 0.15)
        } else {
            (0.05, 0.25, 0.70)
        };
        let texts = texts_for(&topics[0]);
        let text = texts[(h >> 40) as usize % texts.len()];
        let created = DateTime::from_timestamp(created, 0).unwrap_or_default();
        AnalyzedPost {
            id: format!("b{i:09}"),
            source: SourceId::new(SOURCES[i % SOURCES.len()]).expect("source"),
            url: Some(format!("https://example.vn/p/{i}")),
            author: format!("{:016x}", h % 300_000),
            lang_declared: Some("vi".into()),
            created_at: created,
            fetched_at: created + ChronoDuration::seconds(40),
            places: places.into_iter().map(|p| PlaceId::new(p).expect("place")).collect(),
            engagement: Engagement {
                likes: Some((h >> 24) % 60),
                shares: Some((h >> 32) % 7),
                replies: Some((h >> 36) % 12),
            },
            created_at_estimated: false,
            text_redacted: format!("{text}.{TAIL} #{i}"),
            lang: Lang::Vi,
            sentiment: Sentiment::from_probabilities(SentimentProbabilities {
                negative: negative as f32,
                neutral: neutral as f32,
                positive: positive as f32,
            }),
            topics: topics
                .into_iter()
                .map(|t| TopicScore { id: TopicId::new(t).expect("topic"), score: 0.8 })
                .collect(),
            model: ModelInfo { id: "multilingual-e5-small".into(), version: "bench".into() },
            analyzed_at: created + ChronoDuration::seconds(45),
            embedding: None,
            search: None,
        }
    }

    fn rows(&self, range: std::ops::Range<usize>) -> Vec<PostRow> {
        range
            .map(|i| {
                let mut row = PostRow::from_post(self.post(i), 1).expect("row");
                row.index_for_search(); // as the writer does: the big table serves the search bench too
                row
            })
            .collect()
    }
}

/// The 20 rules: every kind and scope, weekly/daily/no seasonality, 60 and 180 minute windows.
/// watch_terms thresholds scale with the posts an hour (a city tunes them to its volume).
fn rules(per_hour: usize) -> String {
    let terms_threshold = (per_hour / 60).max(5);
    let mut s = String::new();
    let mut rule = |name: &str, kind: &str, extra: &str, threshold: &str| {
        s += &format!(
            "[[rule]]\nname = \"{name}\"\nkind = \"{kind}\"\nthreshold = {threshold}\nnotify = [\"log\"]\n{extra}\n"
        );
    };
    // negative_share
    rule("neg_share_by_topic", "negative_share", "window_minutes = 60\nmin_posts = 30", "0.6");
    rule("neg_share_all", "negative_share", "topic = \"*\"\nseasonality = \"daily\"", "0.5");
    rule("neg_share_flooding", "negative_share", "topic = \"flooding\"\nmin_posts = 30", "0.6");
    rule("neg_share_topic_place", "negative_share", "per_place = true\nwindow_minutes = 180", "0.6");
    rule("neg_share_district_1", "negative_share", "place = \"district_1\"\nseasonality = \"none\"", "0.6");
    rule(
        "neg_share_traffic_by_place",
        "negative_share",
        "topic = \"traffic\"\nper_place = true\nseasonality = \"none\"",
        "0.6",
    );
    // volume_spike
    rule("volume_by_topic", "volume_spike", "min_posts = 50", "3.0");
    rule("volume_all", "volume_spike", "topic = \"*\"\nseasonality = \"none\"", "3.0");
    rule("volume_traffic", "volume_spike", "topic = \"traffic\"\nseasonality = \"daily\"", "3.0");
    rule("volume_by_place", "volume_spike", "topic = \"*\"\nper_place = true", "3.0");
    rule(
        "volume_flooding_district_7",
        "volume_spike",
        "topic = \"flooding\"\nplace = \"district_7\"\nwindow_minutes = 180",
        "3.0",
    );
    rule(
        "volume_topic_place",
        "volume_spike",
        "per_place = true\nwindow_minutes = 180\nseasonality = \"daily\"",
        "3.0",
    );
    // net_sentiment_drop
    rule("net_by_topic", "net_sentiment_drop", "window_minutes = 180\nmin_posts = 40", "0.3");
    rule("net_all", "net_sentiment_drop", "topic = \"*\"\nseasonality = \"daily\"", "0.3");
    rule(
        "net_public_safety",
        "net_sentiment_drop",
        "topic = \"public_safety\"\nwindow_minutes = 180\nseasonality = \"none\"",
        "0.3",
    );
    rule("net_by_place", "net_sentiment_drop", "topic = \"*\"\nper_place = true\nwindow_minutes = 180", "0.3");
    rule("net_thu_duc", "net_sentiment_drop", "place = \"thu_duc\"\nseasonality = \"daily\"", "0.3");
    // watch_terms
    let t = terms_threshold.to_string();
    rule(
        "flooding_terms",
        "watch_terms",
        "terms = [\"ngập\", \"triều cường\", \"flood\"]\nper_place = true\nwindow_minutes = 30",
        &t,
    );
    rule("fire_terms", "watch_terms", "terms = [\"cháy\", \"hỏa hoạn\", \"fire\"]", &t);
    rule(
        "outage_terms",
        "watch_terms",
        "terms = [\"mất điện\", \"cúp nước\", \"cắt điện\"]\ntopic = \"*\"\nper_place = true",
        &t,
    );
    s + "[[notifier]]\nname = \"log\"\nkind = \"log\"\n"
}

fn scope_label(r: &AlertRule) -> String {
    let topic = match &r.topic {
        Some(RuleTopic::All) => "*".to_owned(),
        Some(RuleTopic::One(t)) => t.as_str().to_owned(),
        None => "each topic".to_owned(),
    };
    let place = match (&r.place, r.per_place) {
        (Some(p), _) => p.as_str().to_owned(),
        (None, true) => "each place".to_owned(),
        (None, false) => "city".to_owned(),
    };
    format!("{topic} × {place}")
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s); 0 elsewhere.
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    f.get(11).zip(f.get(12)).map(|(u, s)| (u + s) / 100.0).unwrap_or(0.0)
}

/// Sum of some `system.events` counters (0 when absent).
async fn server_events(client: &clickhouse::Client, events: &str) -> f64 {
    let sql = format!("SELECT toFloat64(sum(value)) FROM system.events WHERE event IN ({events})");
    client.query(&sql).fetch_one::<f64>().await.unwrap_or(0.0)
}

/// CPU seconds ClickHouse's query threads have used since it started (not background merges).
async fn server_cpu_secs(client: &clickhouse::Client) -> f64 {
    server_events(client, "'UserTimeMicroseconds', 'SystemTimeMicroseconds'").await / 1e6
}

/// Rows the server read from tables: `SelectedRows` where the server counts it, else (18.16) the
/// marks it selected × 2048, posts' index granularity (an upper bound).
async fn server_rows(client: &clickhouse::Client) -> f64 {
    match server_events(client, "'SelectedRows'").await {
        rows if rows > 0.0 => rows,
        _ => server_events(client, "'SelectedMarks'").await * 2048.0,
    }
}

/// (posts, first, last created_at) of `db.posts`, if the table exists.
async fn stored(client: &clickhouse::Client, db: &Database) -> Option<(u64, i64, i64)> {
    let exists: u64 = client
        .query("SELECT count() FROM system.tables WHERE database = ? AND name = 'posts'")
        .bind(db.as_str())
        .fetch_one()
        .await
        .expect("system.tables");
    if exists == 0 {
        return None;
    }
    let sql = format!("SELECT count(), toInt64(min(created_at)), toInt64(max(created_at)) FROM {db}.posts");
    Some(client.query(&sql).fetch_one().await.expect("stored posts"))
}

async fn load(client: &clickhouse::Client, db: &Database, city: City, n: usize, batch: usize) {
    let client = client.clone().with_database(db.as_str());
    let city = std::sync::Arc::new(city);
    let t0 = Instant::now();
    let gen = |from: usize| {
        let city = city.clone();
        tokio::task::spawn_blocking(move || city.rows(from..(from + batch).min(n)))
    };
    let mut next = (n > 0).then(|| gen(0));
    let mut done = 0;
    while let Some(pending) = next.take() {
        let rows = pending.await.expect("generate");
        let upto = done + rows.len();
        // The next batch is generated while this one is inserted.
        next = (upto < n).then(|| gen(upto));
        let mut insert = client.insert::<PostRow>("posts").await.expect("start insert");
        for row in &rows {
            insert.write(row).await.expect("write row");
        }
        insert.end().await.expect("insert posts");
        done = upto;
        let secs = t0.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        eprintln!(
            "loaded {done} / {n} posts ({:.0}%), {rate:.0} posts/s, {secs:.0} s, about {:.0} s to go",
            done as f64 * 100.0 / n as f64,
            (n - done) as f64 / rate.max(1e-9)
        );
    }
}

/// Waits (up to `limit`) for background merges to end, so they do not compete with the runs.
async fn settle(client: &clickhouse::Client, db: &Database, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let merging: u64 = client
            .query("SELECT count() FROM system.merges WHERE database = ?")
            .bind(db.as_str())
            .fetch_one()
            .await
            .unwrap_or(0);
        if merging == 0 || t0.elapsed() > limit {
            eprintln!("merges: {merging} running after {:.0} s of waiting", t0.elapsed().as_secs_f64());
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn deps(client: &clickhouse::Client, config: &AlertsConfig) -> AlertDeps {
    AlertDeps {
        client: client.clone(),
        notifiers: Notifiers::build(&config.notifier, |_| None, &RetryPolicy::default()).expect("notifiers"),
        health: stagekit::Health::default().stage(stagekit::StageName::Alert),
        digest: None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(url) = std::env::var("CITYPULSE_TEST_CLICKHOUSE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: CITYPULSE_TEST_CLICKHOUSE_URL not set");
        return;
    };
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
    let config = Config::load_with_env(dir, std::iter::empty()).unwrap_or_else(|p| panic!("config: {p:?}"));
    let tz = config.tz();
    let zone = CityZone::new(&config.services.city.time_zone).expect("zone");
    let topics: Vec<String> = config.topics.topic.iter().map(|t| t.id.as_str().to_owned()).collect();
    let places: Vec<String> = config.places.place.iter().map(|p| p.id.as_str().to_owned()).collect();

    let n = env_usize("CITYPULSE_BENCH_POSTS", 10_000_000);
    let days = env_usize("CITYPULSE_BENCH_DAYS", 90).max(1);
    let batch = env_usize("CITYPULSE_BENCH_BATCH", 200_000).max(1);
    let runs = env_usize("CITYPULSE_BENCH_RUNS", 5).max(1);
    let keep = env_flag("CITYPULSE_BENCH_KEEP_DB");
    let db_name = std::env::var("CITYPULSE_BENCH_DB").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| {
        if keep {
            "cp_bench_alert".to_owned()
        } else {
            format!("cp_bench_alert_{}", std::process::id())
        }
    });
    let db = Database::new(&db_name).expect("db name");
    let client = clickhouse::Client::default().with_url(url).with_validation(false);

    let span = days as i64 * 86_400;
    let reuse = match stored(&client, &db).await {
        Some((count, first, last)) if keep && count == n as u64 && (last - first - span).abs() < 2 * 3600 => {
            eprintln!("reusing {db}: {count} posts over {days} days");
            true
        }
        Some((count, _, _)) => {
            eprintln!("dropping {db} ({count} posts, not the {n} over {days} days asked for)");
            client.query(&format!("DROP DATABASE {db}")).execute().await.expect("drop");
            false
        }
        None => false,
    };
    store::migrate(&client, &db, zone).await.expect("migrate");
    if !reuse {
        let end = floor_minute(Utc::now()).with_minute(0).expect("hour").timestamp();
        let city = City::new(topics.clone(), places.clone(), tz, n, days, end);
        eprintln!(
            "loading {n} posts over {days} days into {db} ({} topics, {} places; the last {} are a flood in District 7)",
            city.topics.len(),
            places.len(),
            n - city.ordinary
        );
        let t0 = Instant::now();
        load(&client, &db, city, n, batch).await;
        println!("load: {n} posts in {:.1} s", t0.elapsed().as_secs_f64());
    }
    settle(&client, &db, Duration::from_secs(180)).await;

    let (count, _, last) = stored(&client, &db).await.expect("posts");
    assert_eq!(count, n as u64, "posts stored");
    // As of just after the newest post: the flood is in the current windows.
    let at = DateTime::from_timestamp(last + 60, 0).expect("at");
    let per_hour = n / (days * 24);
    let alerts: AlertsConfig = toml::from_str(&rules(per_hour)).expect("rules");
    let mut problems = schema::config::Problems::default();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let place_refs: Vec<&str> = places.iter().map(String::as_str).collect();
    alerts.validate(Some(&topic_refs), Some(&place_refs), None, &mut problems.file("alerts.toml"));
    assert!(problems.is_empty(), "bench rules: {problems:?}");
    assert_eq!(alerts.rule.len(), 20);
    let settings = AlertSettings {
        db: db.clone(),
        zone,
        tz,
        every: Duration::from_secs(60),
        notify: alerts.rule.iter().map(|r| (r.name.clone(), r.notify.clone())).collect(),
        rules: alerts.rule.clone(),
        searches: Default::default(),
        public_url: Some(url::Url::parse("https://citypulse.example.vn").expect("url")),
        digest: None,
    };

    // Warm-up (caches, first connections), then the measured cycles.
    let warm = Instant::now();
    let events = alert::evaluate_once(&settings, deps(&client, &alerts), at, true).await.expect("evaluate");
    let warm = warm.elapsed();
    let (cpu0, rows0, own0) = (server_cpu_secs(&client).await, server_rows(&client).await, process_cpu_secs());
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let again = alert::evaluate_once(&settings, deps(&client, &alerts), at, true).await.expect("evaluate");
        times.push(t0.elapsed());
        assert_eq!(again.len(), events.len(), "the same data and time give the same events");
    }
    let own = (process_cpu_secs() - own0) / runs as f64;
    let (cpu, rows) =
        ((server_cpu_secs(&client).await - cpu0) / runs as f64, (server_rows(&client).await - rows0) / runs as f64);
    times.sort();
    let median = times[times.len() / 2];
    let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for e in &events {
        *by_rule.entry(e.rule.as_str()).or_default() += 1;
    }
    println!(
        "data: {n} posts over {days} days ({per_hour} an hour on average), {} topics, {} places; evaluated at {at}",
        topics.len() + 1,
        places.len()
    );
    println!(
        "events per cycle: {} ({})",
        events.len(),
        by_rule.iter().map(|(r, k)| format!("{r} {k}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "evaluate_once, 20 rules (dry run): warm-up {:.0} ms; {runs} runs min {:.0} ms, median {:.0} ms, max {:.0} ms; \
         ClickHouse query CPU {:.2} s a cycle{}; this process {own:.2} s CPU a cycle",
        ms(warm),
        ms(times[0]),
        ms(median),
        ms(times[times.len() - 1]),
        cpu,
        if rows > 0.0 { format!(", {:.1} M rows read a cycle", rows / 1e6) } else { String::new() }
    );
    let verdict = if median.as_secs_f64() <= TARGET_S { "within" } else { "OVER" };
    println!(
        "SUMMARY alert evaluation: median {:.2} s vs target {TARGET_S:.1} s = {:.2}x ({verdict} target); \
         ClickHouse CPU {cpu:.2} s/cycle; {n} posts, {days} days, 20 rules, {} events",
        median.as_secs_f64(),
        median.as_secs_f64() / TARGET_S,
        events.len()
    );

    if std::env::var("CITYPULSE_BENCH_BREAKDOWN").as_deref() != Ok("0") {
        breakdown(&client, &db, &settings, at).await;
    }
    if keep {
        eprintln!("kept database {db} (CITYPULSE_BENCH_KEEP_DB)");
    } else {
        client.query(&format!("DROP DATABASE {db}")).execute().await.expect("drop");
    }
}

/// Each rule alone: its ClickHouse read and the whole rule through the engine.
async fn breakdown(client: &clickhouse::Client, db: &Database, settings: &AlertSettings, at: DateTime<Utc>) {
    let earliest = settings.rules.iter().map(|r| Windows::for_rule(r, at).earliest()).min().unwrap_or(0);
    let t0 = Instant::now();
    let data_since = observe::data_since(client, db, earliest).await.expect("data_since");
    println!("breakdown: data_since {:.0} ms (once a cycle)", ms(t0.elapsed()));
    let history = alert::history::History::new(client.clone(), db.clone());
    let t0 = Instant::now();
    history.open_alerts().await.expect("open alerts");
    println!("breakdown: open_alerts {:.0} ms (once a cycle)", ms(t0.elapsed()));
    let mut engine = Engine::new(
        client.clone(),
        db.clone(),
        settings.tz,
        settings.rules.clone(),
        &settings.searches,
        settings.public_url.clone(),
    )
    .expect("engine");
    let (cpu0, own0) = (server_cpu_secs(client).await, process_cpu_secs());
    let t0 = Instant::now();
    let events = engine.evaluate(at, &mut OpenAlerts::new()).await.expect("evaluate").len();
    println!(
        "breakdown: Engine::evaluate of all 20 rules {:.0} ms, {events} events (ClickHouse CPU {:.0} ms, this process {:.0} ms)",
        ms(t0.elapsed()),
        (server_cpu_secs(client).await - cpu0) * 1e3,
        (process_cpu_secs() - own0) * 1e3
    );
    println!(
        "{:<28} {:<18} {:<26} {:>6} {:>6} {:>9} {:>9} {:>8} {:>9}",
        "rule", "kind", "scope", "keys", "events", "read ms", "CH cpu ms", "M rows", "rule ms"
    );
    let (mut total_read, mut total_rule, mut total_cpu, mut total_keys) = (0.0, 0.0, 0.0, 0);
    for rule in &settings.rules {
        let w = Windows::for_rule(rule, at);
        let (cpu0, rows0) = (server_cpu_secs(client).await, server_rows(client).await);
        let t0 = Instant::now();
        let keys = if rule.kind == RuleKind::WatchTerms {
            observe::window_posts(client, db, rule, None, &w, alert::engine::TERM_WINDOW_POSTS)
                .await
                .expect("posts")
                .len()
        } else {
            observe::counts(client, db, rule, None, &w, data_since).await.expect("counts").len()
        };
        let read = t0.elapsed();
        let (cpu, rows) = (server_cpu_secs(client).await - cpu0, server_rows(client).await - rows0);
        let mut engine = Engine::new(
            client.clone(),
            db.clone(),
            settings.tz,
            vec![rule.clone()],
            &settings.searches,
            settings.public_url.clone(),
        )
        .expect("engine");
        let t0 = Instant::now();
        let events = engine.evaluate(at, &mut OpenAlerts::new()).await.expect("evaluate").len();
        let whole = t0.elapsed();
        total_read += ms(read);
        total_rule += ms(whole);
        total_cpu += cpu * 1e3;
        let keys = if rule.kind == RuleKind::WatchTerms {
            format!("{keys}p")
        } else {
            total_keys += keys;
            keys.to_string()
        };
        println!(
            "{:<28} {:<18} {:<26} {:>6} {:>6} {:>9.0} {:>9.0} {:>8.2} {:>9.0}",
            rule.name,
            rule.kind.as_str(),
            scope_label(rule),
            keys,
            events,
            ms(read),
            cpu * 1e3,
            rows / 1e6,
            ms(whole)
        );
    }
    println!(
        "breakdown totals: {total_keys} keys judged by the 17 count rules; reads {total_read:.0} ms (ClickHouse CPU \
         {total_cpu:.0} ms); rules alone {total_rule:.0} ms (each includes data_since and evidence reads; for \
         watch_terms rules `keys` is the posts read, `p`)"
    );
}
