//! The emerging-issues job on a busy day, against a real ClickHouse (CITYPULSE_TEST_CLICKHOUSE_URL;
//! skipped without it). Not a test: it prints numbers.
//!
//! Loads `CITYPULSE_BENCH_POSTS` [100000] unclaimed posts on the report's day and as many on each
//! of `CITYPULSE_BENCH_BASELINE_DAYS` [7] days before, through store's Writer (posts and
//! `post_embeddings`, as the store stage writes them), then times `Job::compute` for the day
//! (`CITYPULSE_BENCH_RUNS` [3] runs: min / median / max). The embeddings are synthetic (no model
//! run here: 800,000 encoder passes take about half an hour at 500 posts/s): 60% of posts scattered, 40% around
//! 300 everyday subjects present every day, and 400 posts of one new subject on the report's day
//! only, so the job has real grouping work and one thing to find.
//!
//! Also measured, after the load, in 6 interleaved rounds of 5,000 posts written without and 5,000
//! with embeddings: the writer's time per 1,000 posts each way (median), and the bytes per post of
//! `post_embeddings` on disk (compressed) and in memory (uncompressed).
//!
//! Run: `CITYPULSE_TEST_CLICKHOUSE_URL=http://127.0.0.1:18123 cargo bench -p emerging --bench job`.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use emerging::Job;
use schema::config::emerging::EmergingConfig;
use schema::{
    AnalyzedPost, Engagement, Int8Embedding, Lang, ModelInfo, Sentiment, SentimentProbabilities, SourceId, TopicId,
    TopicScore,
};
use std::time::Instant;
use store::{CityZone, Database, Writer};
use testkit::Xorshift as Rng;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn post(id: String, at: chrono::DateTime<Utc>, embedding: Option<Vec<f32>>, text: String) -> AnalyzedPost {
    let p = SentimentProbabilities { negative: 0.5, neutral: 0.3, positive: 0.2 };
    AnalyzedPost {
        url: None,
        source: SourceId::new("bench").unwrap(),
        author: format!("{:032x}", id.len() as u64 * 7919),
        id,
        lang_declared: None,
        created_at: at,
        fetched_at: at,
        places: vec![],
        engagement: Engagement::default(),
        created_at_estimated: false,
        text_redacted: text,
        lang: Lang::Vi,
        sentiment: Sentiment::from_probabilities(p),
        topics: vec![TopicScore { id: TopicId::other(), score: 0.9 }],
        model: ModelInfo { id: "bench".into(), version: "bench".into() },
        analyzed_at: at,
        embedding: embedding.map(|v| Int8Embedding::quantise(&v)),
        search: None,
    }
}

/// One day's posts: scattered, everyday subjects, and (when `new`) the new subject.
fn day_posts(
    date: NaiveDate,
    n: usize,
    subjects: &[Vec<f32>],
    new: Option<&[f32]>,
    rng: &mut Rng,
) -> Vec<AnalyzedPost> {
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let start = tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap()).unwrap().to_utc();
    (0..n)
        .map(|i| {
            let at = start + Duration::seconds((i as i64 * 86_000) / n as i64);
            let (v, text) = match (i % 10, new) {
                (0, Some(topic)) if i < 4000 => (
                    topic.iter().map(|t| t + 0.35 * rng.next_f32()).collect(),
                    format!("cầu Chữ Y đóng cửa sửa chữa {i}"),
                ),
                (0..=5, _) => (rng.vector(384), format!("chuyện thường ngày số {i}")),
                _ => {
                    let s = &subjects[i % subjects.len()];
                    (
                        s.iter().map(|x| x + 0.6 * rng.next_f32()).collect(),
                        format!("chủ đề {} bài {i}", i % subjects.len()),
                    )
                }
            };
            post(format!("{date}-{i}"), at, Some(v), text)
        })
        .collect()
}

async fn write(writer: &Writer, posts: Vec<AnalyzedPost>) -> f64 {
    let started = Instant::now();
    for chunk in posts.chunks(5000) {
        let report = writer.write(chunk.to_vec(), &Default::default()).await.expect("write");
        assert!(report.rejected.is_empty());
    }
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("CITYPULSE_TEST_CLICKHOUSE_URL") else {
        eprintln!("skipped: CITYPULSE_TEST_CLICKHOUSE_URL not set");
        return;
    };
    let (n, baseline_days, runs) = (
        env_usize("CITYPULSE_BENCH_POSTS", 100_000),
        env_usize("CITYPULSE_BENCH_BASELINE_DAYS", 7),
        env_usize("CITYPULSE_BENCH_RUNS", 3),
    );
    let name = format!("cp_bench_emerging_{}", std::process::id());
    let client = clickhouse::Client::default().with_url(&url).with_validation(false);
    let db = Database::new(&name).unwrap();
    store::migrate(&client, &db, CityZone::new("Asia/Ho_Chi_Minh").unwrap()).await.expect("migrate");
    let writer = Writer::new(client.clone(), db.clone(), Default::default());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let subjects: Vec<Vec<f32>> = (0..300).map(|_| rng.vector(384)).collect();
    let new_subject = rng.vector(384);
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let day = Utc::now().with_timezone(&tz).date_naive() - Duration::days(1);

    for d in (1..=baseline_days).rev() {
        let date = day - Duration::days(d as i64);
        let secs = write(&writer, day_posts(date, n, &subjects, None, &mut rng)).await;
        eprintln!("loaded {n} posts on {date} in {secs:.1} s");
    }
    let secs = write(&writer, day_posts(day, n, &subjects, Some(&new_subject), &mut rng)).await;
    eprintln!("loaded {n} posts on {day} (the report's day) in {secs:.1} s");

    // Writer cost with and without embeddings, on days the job does not read: interleaved rounds of
    // 5,000 posts each way after the bulk load (the first writes to a new database are slower).
    let (mut plain_ms, mut with_ms) = (Vec::new(), Vec::new());
    for round in 0..6 {
        let far = day - Duration::days(30 + round);
        let mut posts = day_posts(far, 10_000, &subjects, None, &mut rng);
        let with = posts.split_off(5_000);
        posts.iter_mut().for_each(|p| p.embedding = None);
        plain_ms.push(write(&writer, posts).await * 1000.0 / 5.0);
        with_ms.push(write(&writer, with).await * 1000.0 / 5.0);
    }
    plain_ms.sort_by(f64::total_cmp);
    with_ms.sort_by(f64::total_cmp);
    let (plain, with) = (plain_ms[3], with_ms[3]);
    let (compressed, uncompressed): (f64, f64) = client
        .query(
            "SELECT sum(data_compressed_bytes) / sum(rows), sum(data_uncompressed_bytes) / sum(rows) FROM system.parts \
             WHERE database = ? AND table = 'post_embeddings' AND active",
        )
        .bind(&name)
        .fetch_one()
        .await
        .expect("parts");
    println!(
        "writer (median of 6 interleaved rounds of 5,000 posts): {plain:.1} ms per 1000 posts without embeddings, \
         {with:.1} ms with (+{:.0}%); post_embeddings {compressed:.0} bytes per post on disk, {uncompressed:.0} uncompressed",
        100.0 * (with / plain - 1.0),
    );

    let job = Job::new(client.clone(), db.clone(), tz, EmergingConfig::default());
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let report = job.compute(day).await.expect("compute");
        times.push(started.elapsed().as_secs_f64());
        last = Some(report);
    }
    times.sort_by(f64::total_cmp);
    let report = last.unwrap();
    let found_new = report.groups.iter().any(|g| g.label.contains("chữ y") || g.label.contains("cầu"));
    println!(
        "emerging job, {} unclaimed posts on the day, {} baseline days of {n}: min {:.2} s, median {:.2} s, max {:.2} s; \
         {} dense groups, {} reported, the new subject {}",
        report.unclaimed_posts,
        baseline_days,
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        report.groups_found,
        report.groups.len(),
        if found_new { "reported" } else { "NOT reported" }
    );
    if std::env::var("CITYPULSE_BENCH_KEEP_DB").is_ok_and(|v| v == "1") {
        eprintln!("kept database {name} (CITYPULSE_BENCH_KEEP_DB=1)");
    } else {
        client.query(&format!("DROP DATABASE IF EXISTS {name}")).execute().await.ok();
    }
}
