//! Replay → Kafka throughput: writes N synthetic posts as JSONL, replays them as fast as possible
//! into an in-process MockCluster through the real producer (idempotent, acks=all, lz4) and prints
//! posts per second. `cargo run -p ingest --example replay_bench -- [N]` (default 200000); with
//! `CITYPULSE_TEST_KAFKA_BROKERS` set it produces to that broker (tansu) instead.

use ingest::polite::QuotaSpec;
use schema::config::sources::ReplaySource;
use std::io::Write;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("posts.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let texts = ["Kẹt xe ở Quận 1 sáng nay", "Metro số 1 chạy êm, quá tiện", "Ngập ở Nguyễn Hữu Cảnh sau mưa"];
    for i in 0..n {
        let t = chrono::DateTime::from_timestamp(1_732_000_000 + i as i64, 0).ok_or("time")?;
        let post = schema::Post {
            id: format!("bench-{i}"),
            source: schema::SourceId::new("replay")?,
            url: None,
            author: format!("{:032x}", i % 5000),
            text: format!("{} #{i}", texts[i % texts.len()]),
            lang: Some("vi".into()),
            created_at: t,
            fetched_at: t,
            places: vec![schema::PlaceId::new("district_1")?],
            engagement: Default::default(),
            created_at_estimated: false,
        };
        file.write_all(&schema::encode(&post))?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    drop(file);

    // Where the time goes, outside Kafka: decoding and validating every line, encoding every post.
    let text = std::fs::read(&path)?;
    let t = Instant::now();
    let limits = schema::Limits::default();
    let posts: Vec<schema::Post> = text
        .split(|b| *b == b'\n')
        .filter_map(|l| ingest::parse::replay::parse_line(l, &limits).ok().flatten())
        .collect();
    let decode = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let bytes: usize = posts.iter().map(|p| schema::encode(p).len() + p.key().len()).sum();
    let encode = t.elapsed().as_secs_f64();
    println!(
        "decode+validate {:.0} posts/s, encode+key {:.0} posts/s ({bytes} bytes)",
        n as f64 / decode,
        n as f64 / encode
    );

    // A real broker when one is given (tansu from `make test`), else the in-process MockCluster.
    let _cluster;
    let (brokers, topic, kind) = match std::env::var("CITYPULSE_TEST_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => {
            let topic = format!("bench_raw_{}", std::process::id());
            let admin: rdkafka::admin::AdminClient<_> =
                rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create()?;
            let new = rdkafka::admin::NewTopic::new(&topic, 6, rdkafka::admin::TopicReplication::Fixed(1));
            for r in admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new()).await? {
                r.map_err(|(t, e)| format!("create {t}: {e}"))?;
            }
            (brokers, topic, "tansu")
        }
        _ => {
            let cluster = rdkafka::mocking::MockCluster::new(1)?;
            cluster.create_topic("posts.raw", 6, 1)?;
            let brokers = cluster.bootstrap_servers();
            _cluster = cluster;
            (brokers, "posts.raw".to_owned(), "MockCluster")
        }
    };
    let kafka = schema::config::services::KafkaConfig { brokers, topic_raw: topic, ..Default::default() };
    let settings = ingest::IngestSettings {
        sources: Default::default(),
        places: Default::default(),
        kafka,
        state_dir: dir.path().join("state"),
        limits: schema::Limits::default(),
        zone: chrono_tz::Asia::Ho_Chi_Minh,
        default_quota: QuotaSpec::DEFAULT,
    };
    let shared = ingest::build_shared(
        &settings,
        schema::author::AuthorHasher::development(),
        stagekit::StageHealth::detached(stagekit::StageName::Ingest),
    )?;
    let source = ReplaySource {
        name: schema::SourceId::new("replay")?,
        enabled: true,
        path: path.clone(),
        posts_per_second: 0.0,
    };
    let start = Instant::now();
    let summary = ingest::crawl::replay::run_replay(&source, shared, CancellationToken::new()).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "replay -> Kafka ({kind}, acks=all, lz4): {} posts in {secs:.2} s = {:.0} posts/s",
        summary.produced,
        summary.produced as f64 / secs
    );
    Ok(())
}
