//! Store benchmarks against a real ClickHouse (CITYPULSE_TEST_CLICKHOUSE_URL; skipped without it):
//!
//! 1. Writer throughput: realistic analysed posts (Vietnamese text of ~300 bytes, 1–3 topics, 0–2
//!    places) in batches of `CITYPULSE_BENCH_BATCH` [50000] — including the per-batch lookup of
//!    stored keys that keeps the trend tables exact — then the same posts again (all duplicates).
//!    Two shapes of stream: "live" (published over the last hour, in arrival order, as crawlers
//!    deliver them) and "backfill" (published anywhere in the last 7 days: 7 day partitions and
//!    ~5x more trend cells per batch; `CITYPULSE_BENCH_SHAPES` [live,backfill] picks them). Each
//!    run writes new keys; `CITYPULSE_BENCH_RUNS` [5] runs alternate new posts and their
//!    redelivery, and a last line per kind gives the median and range over the runs. Each line
//!    gives wall-clock posts/s and the CPU spent per 1000 posts by this process and by ClickHouse's
//!    query threads (`system.events`): on a shared machine the CPU figures are the stable ones, and
//!    their ratio is the one `make bench` reports. An untimed write of the same shape comes first:
//!    a process's first write page-faults the allocator's memory in.
//!    `CITYPULSE_BENCH_NO_VIEWS=1` drops the trend views first, to show what the materialized views
//!    cost. The posts carry their search index as the analyzer sends it;
//!    `CITYPULSE_BENCH_WRITER_INDEXES=1` leaves it out, so the writer makes it (posts from an
//!    analyzer older than schema 1.3).
//! 2. Trend query latency with `CITYPULSE_BENCH_POSTS` [1000000] synthetic posts generated inside
//!    ClickHouse (INSERT ... SELECT FROM numbers(), through the materialized views): p50/p95 of the
//!    main queries over `CITYPULSE_BENCH_QUERY_RUNS` [20] runs each.

use chrono::{Duration as ChronoDuration, Utc};
use schema::{
    AnalyzedPost, Lang, ModelInfo, PlaceId, Sentiment, SentimentProbabilities, SourceId, TopicId, TopicScore,
    WireSearchIndex,
};
use std::time::{Duration, Instant};
use store::{CityZone, Database, Dimension, Granularity, Queries, TrendQuery, Writer, WriterConfig};
use tokio_util::sync::CancellationToken;

/// The allocator the `citypulse` binary runs the writer with (src/main.rs says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOPICS: [&str; 8] =
    ["flooding", "traffic", "air_quality", "public_transport", "digital_services", "administrative", "safety", "other"];
const PLACES: [&str; 6] = ["quan_1", "quan_3", "binh_thanh", "thu_duc", "go_vap", "tan_binh"];
const SOURCES: [&str; 3] = ["mastodon_social", "reddit_saigon", "vnexpress_rss"];
const TEXT: &str = "Sáng nay đường Nguyễn Hữu Cảnh lại ngập sâu sau cơn mưa lớn, xe máy chết máy hàng loạt, \
    người dân phải dắt bộ qua đoạn ngập. Mong thành phố sớm có giải pháp chống ngập lâu dài cho khu vực này.";

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `n` posts published over the last `spread_secs` seconds: spread uniformly at random, or (`live`)
/// in arrival order with a few minutes of jitter.
fn posts(n: usize, spread_secs: u64, live: bool, id_base: usize) -> Vec<AnalyzedPost> {
    let now = Utc::now();
    let writer_indexes = std::env::var_os("CITYPULSE_BENCH_WRITER_INDEXES").is_some();
    (0..n)
        .map(|i| {
            let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let neg = (h % 61) as f32 / 100.0;
            let pos = ((h >> 8) % 31) as f32 / 100.0;
            let p = SentimentProbabilities { negative: neg, neutral: 1.0 - neg - pos, positive: pos };
            let topics = (0..1 + (h >> 16) % 3)
                .map(|k| TopicScore {
                    id: TopicId::new(TOPICS[((h >> (20 + k * 3)) % 8) as usize]).expect("topic"),
                    score: 0.8,
                })
                .fold(Vec::new(), |mut v: Vec<TopicScore>, t| {
                    if !v.iter().any(|x| x.id == t.id) {
                        v.push(t);
                    }
                    v
                });
            let places = (0..(h >> 30) % 3)
                .map(|k| PlaceId::new(PLACES[((h >> (33 + k)) % 6) as usize]).expect("place"))
                .collect();
            let age =
                if live { (n - i) as u64 * spread_secs / n as u64 + (h >> 40) % 300 } else { (h >> 40) % spread_secs };
            let created = now - ChronoDuration::seconds(age as i64);
            let i = id_base + i;
            AnalyzedPost {
                id: format!("{i:09}"),
                source: SourceId::new(SOURCES[i % 3]).expect("source"),
                url: Some(format!("https://mastodon.social/@x/{i}")),
                author: format!("{:064x}", h % 200_000),
                lang_declared: Some("vi".into()),
                created_at: created,
                fetched_at: created + ChronoDuration::seconds(40),
                places,
                engagement: Default::default(),
                created_at_estimated: false,
                search: (!writer_indexes).then(|| WireSearchIndex::of(&format!("{TEXT} #{i}"))),
                text_redacted: format!("{TEXT} #{i}"),
                lang: Lang::Vi,
                sentiment: Sentiment::from_probabilities(p),
                topics,
                model: ModelInfo { id: "multilingual-e5-small".into(), version: "e5s-q4+heads-2026-11-26".into() },
                analyzed_at: created + ChronoDuration::seconds(45),
                embedding: None,
            }
        })
        .collect()
}

fn token_never() -> CancellationToken {
    CancellationToken::new()
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s); 0 elsewhere.
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    f.get(11).zip(f.get(12)).map(|(u, s)| (u + s) / 100.0).unwrap_or(0.0)
}

/// CPU seconds ClickHouse's query threads have used since it started (not background merges).
async fn server_cpu_secs(client: &clickhouse::Client) -> f64 {
    let sql = "SELECT toFloat64(sum(value)) / 1e6 FROM system.events \
               WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')";
    client.query(sql).fetch_one::<f64>().await.unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Copies of `posts` under new keys: each id prefixed with `prefix`.
fn with_id_prefix(posts: &[AnalyzedPost], prefix: &str) -> Vec<AnalyzedPost> {
    posts.iter().cloned().map(|p| AnalyzedPost { id: format!("{prefix}-{}", p.id), ..p }).collect()
}

/// One timed write of a whole stream.
struct WriteRun {
    secs: f64,
    posts_per_sec: f64,
    /// CPU per 1000 posts, ms: this process, and ClickHouse's query threads.
    writer_ms: f64,
    server_ms: f64,
}

/// Writes `data` in batches of `batch` and measures it; checks that all (or none) were new.
async fn measure_write(
    writer: &Writer,
    client: &clickhouse::Client,
    data: &[AnalyzedPost],
    batch: usize,
    expect_new: bool,
) -> WriteRun {
    // Owned batches made before the clock starts: the consumer hands decoded posts over.
    let batches: Vec<Vec<AnalyzedPost>> = data.chunks(batch).map(<[_]>::to_vec).collect();
    let (cpu0, server0) = (process_cpu_secs(), server_cpu_secs(client).await);
    let t0 = Instant::now();
    let mut inserted = 0;
    for b in batches {
        inserted += writer.write(b, &token_never()).await.expect("write").inserted;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, server) = (process_cpu_secs() - cpu0, server_cpu_secs(client).await - server0);
    assert_eq!(inserted, if expect_new { data.len() } else { 0 });
    let per_1000 = 1e6 / data.len() as f64;
    WriteRun { secs, posts_per_sec: data.len() as f64 / secs, writer_ms: cpu * per_1000, server_ms: server * per_1000 }
}

/// Median and range of each figure over the runs, and of the writer ÷ ClickHouse CPU ratio.
fn summary(runs: &[WriteRun]) -> String {
    let stat = |f: &dyn Fn(&WriteRun) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let median = (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0;
        (median, v[0], v[v.len() - 1])
    };
    let (rate, rate_lo, rate_hi) = stat(&|r| r.posts_per_sec);
    let (w, w_lo, w_hi) = stat(&|r| r.writer_ms);
    let (c, c_lo, c_hi) = stat(&|r| r.server_ms);
    let (q, q_lo, q_hi) = stat(&|r| r.writer_ms / r.server_ms.max(f64::MIN_POSITIVE));
    format!(
        "median of {} runs: {rate:.0} posts/s ({rate_lo:.0}-{rate_hi:.0}); CPU per 1000 posts: \
         writer {w:.1} ms ({w_lo:.1}-{w_hi:.1}), ClickHouse queries {c:.1} ms ({c_lo:.1}-{c_hi:.1}); \
         writer / ClickHouse {q:.2} ({q_lo:.2}-{q_hi:.2})",
        runs.len()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(url) = std::env::var("CITYPULSE_TEST_CLICKHOUSE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: CITYPULSE_TEST_CLICKHOUSE_URL not set");
        return;
    };
    let client = clickhouse::Client::default().with_url(url).with_validation(false);
    let db = Database::new(&format!("cp_bench_{}", std::process::id())).expect("db");
    let zone = CityZone::new("Asia/Ho_Chi_Minh").expect("zone");
    store::migrate(&client, &db, zone).await.expect("migrate");

    if std::env::var_os("CITYPULSE_BENCH_NO_VIEWS").is_some() {
        for view in ["trends_hourly_mv", "trends_daily_mv"] {
            client.query(&format!("DROP TABLE {db}.{view}")).execute().await.expect("drop view");
        }
    }
    let n = env_usize("CITYPULSE_BENCH_ROWS", 200_000);
    let batch = env_usize("CITYPULSE_BENCH_BATCH", 50_000);
    let runs = env_usize("CITYPULSE_BENCH_RUNS", 5).max(1);
    let writer = Writer::new(client.clone(), db.clone(), WriterConfig::default());
    let shapes = std::env::var("CITYPULSE_BENCH_SHAPES").unwrap_or_else(|_| "live,backfill".into());
    let shapes: Vec<&str> = shapes.split(',').map(str::trim).collect();
    if let Some(unknown) = shapes.iter().find(|s| !["live", "backfill"].contains(s)) {
        panic!("CITYPULSE_BENCH_SHAPES: unknown shape {unknown:?} (live, backfill)");
    }
    for (shape, spread, live) in [("live", 3_600, true), ("backfill", 7 * 86_400, false)] {
        if !shapes.contains(&shape) {
            continue;
        }
        let data = posts(n, spread, live, if live { 0 } else { n });
        // Untimed: the process's first write page-faulted the allocator's memory in (0.20 s of
        // system time against 0.01-0.03 s in the live runs after it), which a running writer has
        // behind it.
        measure_write(&writer, &client, &with_id_prefix(&data, "warm"), batch, true).await;
        let mut summaries = [Vec::new(), Vec::new()];
        // New posts and their redelivery alternate, each run on keys no earlier run wrote.
        for run in 0..runs {
            let fresh = with_id_prefix(&data, &run.to_string());
            for (label, expect_new, summary) in [("new posts", true, 0), ("redelivered (all duplicates)", false, 1)] {
                let m = measure_write(&writer, &client, &fresh, batch, expect_new).await;
                println!(
                    "writer, {shape}, {label}, run {}: {n} posts in {:.2} s = {:.0} posts/s (batches of {batch}); \
                     CPU per 1000 posts: writer {:.1} ms, ClickHouse queries {:.1} ms",
                    run + 1,
                    m.secs,
                    m.posts_per_sec,
                    m.writer_ms,
                    m.server_ms
                );
                summaries[summary].push(m);
            }
        }
        for (label, runs) in [("new posts", &summaries[0]), ("redelivered (all duplicates)", &summaries[1])] {
            println!("writer, {shape}, {label}: {}", summary(runs));
        }
    }

    let synthetic = env_usize("CITYPULSE_BENCH_POSTS", 1_000_000);
    let t0 = Instant::now();
    let sql = format!(
        "INSERT INTO {db}.posts (key, source, id, author, lang, text_redacted, sentiment, score, topics, topic_scores, \
         primary_topic, places, created_at, fetched_at, analyzed_at, model_id, model_version, sign, version) \
         SELECT concat('synthetic:', toString(number)), ['mastodon_social', 'reddit_saigon', 'vnexpress_rss'][number % 3 + 1], \
         toString(number), toString(intHash32(number) % 200000), 'vi', 'synthetic', \
         ['negative', 'neutral', 'positive'][intHash32(number) % 3 + 1], ((intHash32(number) % 129) - 64) / 64, \
         arrayDistinct([['flooding', 'traffic', 'air_quality', 'public_transport', 'digital_services', 'administrative', 'safety', 'other'][intHash32(number + 1000000007) % 8 + 1], \
                        ['flooding', 'traffic', 'air_quality', 'public_transport', 'digital_services', 'administrative', 'safety', 'other'][intHash32(number + 2000000014) % 8 + 1]]), \
         [toFloat32(0.8)], 'flooding', \
         if(number % 3 = 0, emptyArrayString(), [['quan_1', 'quan_3', 'binh_thanh', 'thu_duc', 'go_vap', 'tan_binh'][intHash32(number + 3000000021) % 6 + 1]]), \
         toDateTime(toUInt32(now()) - intHash32(number + 4000000028) % (30 * 86400)), now(), now(), 'e5', 'synthetic', 1, 1 \
         FROM system.numbers LIMIT {synthetic}"
    );
    client.query(&sql).execute().await.expect("synthetic insert");
    println!("synthetic: {synthetic} posts generated in ClickHouse in {:.1} s", t0.elapsed().as_secs_f64());

    let queries = Queries::new(client.clone(), db.clone(), zone);
    let query_runs = env_usize("CITYPULSE_BENCH_QUERY_RUNS", 20).max(1);
    let now = Utc::now();
    let base = TrendQuery::new(now - ChronoDuration::days(7), now, Dimension::Topic, Granularity::Hour);
    let cases = [
        ("topic x hour, 7 days", base.clone()),
        (
            "place x day, 30 days, topic flooding",
            TrendQuery {
                since: now - ChronoDuration::days(30),
                by: Dimension::Place,
                granularity: Granularity::Day,
                topic: Some("flooding".into()),
                ..base.clone()
            },
        ),
        (
            "source x hour, 1 day, negative",
            TrendQuery {
                since: now - ChronoDuration::days(1),
                by: Dimension::Source,
                sentiment: Some(schema::SentimentLabel::Negative),
                ..base.clone()
            },
        ),
    ];
    for (label, q) in cases {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..query_runs {
            let t0 = Instant::now();
            rows = queries.trends(&q).await.expect("trends").len();
            times.push(t0.elapsed());
        }
        times.sort();
        println!(
            "trends {label}: {rows} rows, p50 {:.1} ms, p95 {:.1} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3
        );
    }
    let mut times = Vec::new();
    for _ in 0..query_runs {
        let t0 = Instant::now();
        queries
            .top_posts("flooding", Some(schema::SentimentLabel::Negative), now - ChronoDuration::days(1), now, 20)
            .await
            .expect("top");
        times.push(t0.elapsed());
    }
    times.sort();
    println!(
        "top_posts flooding negative 1 day: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3
    );
    client.query(&format!("DROP DATABASE {db}")).execute().await.expect("drop");
}
