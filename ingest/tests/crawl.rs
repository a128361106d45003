//! The crawl loop end to end: local servers in the APIs' real formats → ingest → MockCluster
//! `posts.raw`, read back. Proves every post arrives once, the place filter, restart without gaps.

mod common;

use common::*;
use ingest::checkpoint::Checkpoints;
use schema::SourceId;
use stagekit::StageName;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn mastodon_sources(base: &str) -> String {
    format!(
        r#"
        [defaults]
        backoff_initial_ms = 20
        backoff_max_ms = 200

        [[host_quota]]
        host = "127.0.0.1"
        requests_per_second = 20
        burst = 5

        [[mastodon]]
        name = "mastodon_test"
        base_url = "{base}"
        hashtags = ["saigon"]
        poll_interval_ms = 1000
        require_place = true
        "#
    )
}

fn expected_mastodon_keys(ids: impl Iterator<Item = u64>) -> BTreeSet<String> {
    ids.filter(|id| names_place(*id)).map(|id| format!("mastodon_test:{id}")).collect()
}

fn source() -> SourceId {
    SourceId::new("mastodon_test").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_posts_arrive_once_with_places_despite_bad_responses() {
    mastodon_posts_arrive_once(Kafka::start()).await;
}

/// The same against the tansu broker (a separate process speaking the Kafka protocol).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_posts_arrive_once_through_tansu() {
    if let Some(kafka) = Kafka::tansu().await {
        mastodon_posts_arrive_once(kafka).await;
    }
}

async fn mastodon_posts_arrive_once(kafka: Kafka) {
    let server = TestServer::start().await;
    server.set_statuses(1..=100);
    // A maintenance page and a 500 first: each is a counted error, then the crawler goes on.
    server.script([Scripted::Garbage, Scripted::Status(500)]);
    let dir = tempfile::tempdir().unwrap();
    // Backfill from the start of the timeline (without a cursor a stream starts at the newest page).
    Checkpoints::open(dir.path()).unwrap().save(&source(), "tag:saigon", "0").unwrap();
    let settings = settings(&mastodon_sources(&server.base()), &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));

    let expected = expected_mastodon_keys(1..=100);
    let posts = read_posts(&kafka, expected.len(), Duration::from_millis(1500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    let keys: Vec<String> = posts.iter().map(|p| p.key()).collect();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique, expected);
    assert_eq!(keys.len(), expected.len(), "a post arrived twice");
    for p in &posts {
        assert_eq!(p.places, [schema::PlaceId::new("district_1").unwrap()], "{}", p.text);
        assert_eq!(p.lang.as_deref(), Some("vi"));
        assert!(!p.text.contains('<'), "{}", p.text);
        assert_eq!(p.author.len(), 32);
    }
    let cursor = Checkpoints::open(dir.path()).unwrap().load(&source(), "tag:saigon").unwrap();
    assert_eq!(cursor.as_deref(), Some("100"));
    let log = server.state.requests();
    assert!(log[2].1.contains("min_id=0"), "retried the same cursor: {:?}", log[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpoint_without_gaps() {
    let server = TestServer::start().await;
    server.set_statuses(1..=100);
    // Slow responses so the first run is cancelled in the middle of its third request.
    *server.state.delay.lock().unwrap() = Duration::from_millis(300);
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    Checkpoints::open(dir.path()).unwrap().save(&source(), "tag:saigon", "0").unwrap();
    let settings = settings(&mastodon_sources(&server.base()), &kafka, dir.path());

    let shutdown = CancellationToken::new();
    let first = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.state.requests().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "crawler never reached its third request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel(); // "kill" while page 3 is in flight
    tokio::time::timeout(Duration::from_secs(10), first).await.unwrap().unwrap().unwrap();
    let saved = Checkpoints::open(dir.path()).unwrap().load(&source(), "tag:saigon").unwrap();
    assert_eq!(saved.as_deref(), Some("80"), "two pages of 40 acknowledged");

    let shutdown = CancellationToken::new();
    let second = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    let expected = expected_mastodon_keys(1..=100);
    let posts = read_posts(&kafka, expected.len(), Duration::from_millis(1500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), second).await.unwrap().unwrap().unwrap();

    let keys: Vec<String> = posts.iter().map(|p| p.key()).collect();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique, expected, "no gap");
    assert!(keys.len() - unique.len() <= 40, "at most one page repeated: {} duplicates", keys.len() - unique.len());
    let log = server.state.requests();
    assert!(log[3].1.contains("min_id=80"), "restart resumed from the checkpoint: {:?}", log[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reddit_and_rss_arrive_once_across_polls() {
    let server = TestServer::start().await;
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let base = server.base();
    let toml = format!(
        r#"
        [defaults]
        backoff_initial_ms = 20

        [[reddit]]
        name = "reddit_test"
        base_url = "{base}"
        subreddits = ["saigon"]
        poll_interval_ms = 1000

        [[feed]]
        name = "feed_test"
        url = "{base}/rss/vnexpress.rss"
        poll_interval_ms = 1000
        require_place = false
        "#
    );
    let settings = settings(&toml, &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    // Three polls of each: the watermark cursor must keep later polls from producing again.
    let posts = read_posts(&kafka, 5, Duration::from_millis(2500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    let keys: BTreeSet<String> = posts.iter().map(|p| p.key()).collect();
    let expected: BTreeSet<String> = [
        "reddit_test:1gvx1ab",
        "reddit_test:1gvwa00",
        "feed_test:https://vnexpress.net/ngap-sau-o-nguyen-huu-canh-4820001.html",
        "feed_test:https://vnexpress.net/metro-so-1-4820002.html",
        // Undated: fetched on every poll at a new fetch time, published once.
        "feed_test:https://vnexpress.net/khong-ngay-4820003.html",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, expected);
    assert_eq!(posts.len(), 5, "a post arrived twice");
    let estimated: Vec<&str> = posts.iter().filter(|p| p.created_at_estimated).map(|p| p.id.as_str()).collect();
    assert_eq!(estimated, ["https://vnexpress.net/khong-ngay-4820003.html"]);
    let log = server.state.requests();
    assert!(log.len() >= 4, "polled more than once: {log:?}");
    let feed_polls: Vec<&String> = log.iter().map(|(_, p)| p).filter(|p| p.starts_with("/rss/")).collect();
    assert!(feed_polls.len() >= 2 && feed_polls[1..].iter().all(|p| p.ends_with("if-none-match")), "{feed_polls:?}");
    let flood = posts.iter().find(|p| p.id == "1gvx1ab").unwrap();
    assert_eq!(flood.places, [schema::PlaceId::new("district_7").unwrap()]);
    let metro = posts.iter().find(|p| p.id.contains("metro-so-1")).unwrap();
    assert!(metro.places.contains(&schema::PlaceId::new("metro_line_1").unwrap()), "{:?}", metro.places);
    assert!(metro.places.contains(&schema::PlaceId::new("hcmc").unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_file_to_kafka_and_resume() {
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("posts.jsonl");
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo/posts.jsonl")).unwrap();
    let good: Vec<&str> = demo.lines().filter(|l| !l.trim().is_empty()).collect();
    let (head, tail) = good.split_at(good.len() / 2);
    // The first part has a bad and a blank line inside and ends with a post; the appended part
    // starts with one. A resume one line early produces that last post twice, one line late loses
    // the next one, and either shows in the counts below.
    let (last, before) = head.split_last().unwrap();
    let first_part = format!("{}\nnot json\n\n{last}\n", before.join("\n"));
    std::fs::write(&file, &first_part).unwrap();
    let toml = format!("[[replay]]\nname = \"replay_test\"\npath = \"{}\"\n", file.display());
    let settings = settings(&toml, &kafka, &dir.path().join("state"));
    let replay = |settings: &ingest::IngestSettings| {
        // A new `Shared` each time, as after a restart: no in-memory dedup window hides a re-read.
        ingest::run_with(settings.sources.clone(), shared(settings), CancellationToken::new())
    };
    // Replay ends at the end of the file: run returns without a shutdown, every post acknowledged.
    tokio::time::timeout(Duration::from_secs(20), replay(&settings)).await.unwrap().unwrap();
    assert_eq!(topic_len(&kafka).await, head.len() as i64, "the first part, once");
    let cursor = || {
        Checkpoints::open(&dir.path().join("state"))
            .unwrap()
            .load(&SourceId::new("replay_test").unwrap(), "file")
            .unwrap()
    };
    assert_eq!(cursor(), Some(first_part.lines().count().to_string()), "every line of the first part counted");

    let mut appended = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    std::io::Write::write_all(&mut appended, (tail.join("\n") + "\n").as_bytes()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), replay(&settings)).await.unwrap().unwrap();
    // Again: the checkpoint says the file is done, nothing is produced twice.
    tokio::time::timeout(Duration::from_secs(20), replay(&settings)).await.unwrap().unwrap();
    assert_eq!(topic_len(&kafka).await, good.len() as i64, "each post of the file once");
    let posts = read_posts(&kafka, good.len(), Duration::from_millis(500)).await;
    let keys: Vec<String> = posts.iter().map(|p| p.key()).collect();
    let expected: Vec<String> = good
        .iter()
        .map(|l| schema::decode::<schema::Post>(l.as_bytes(), &schema::Limits::default()).unwrap().key())
        .collect();
    assert_eq!(keys.iter().collect::<BTreeSet<_>>(), expected.iter().collect::<BTreeSet<_>>());
    assert_eq!(keys.len(), good.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_outage_holds_the_cursor_and_loses_nothing() {
    let server = TestServer::start().await;
    server.set_statuses(1..=100);
    let kafka = Kafka::start();
    let cluster = kafka.cluster.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    Checkpoints::open(dir.path()).unwrap().save(&source(), "tag:saigon", "0").unwrap();
    let mut settings = settings(&mastodon_sources(&server.base()), &kafka, dir.path());
    settings.kafka.delivery_timeout_ms = 1500;
    cluster.broker_down(1).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));

    // While Kafka is down deliveries time out: the page is fetched again and again, never skipped.
    // Waits for the second fetch (each waits out a 1.5 s delivery timeout) however slow the machine.
    let refetched = || server.state.requests().iter().filter(|(_, q)| q.contains("min_id=0")).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while refetched() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the unacknowledged page was not fetched again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = Checkpoints::open(dir.path()).unwrap().load(&source(), "tag:saigon").unwrap();
    assert_eq!(held.as_deref(), Some("0"), "cursor moved without acknowledgements");

    cluster.broker_up(1).unwrap();
    let expected = expected_mastodon_keys(1..=100);
    let posts = read_posts(&kafka, expected.len(), Duration::from_millis(1500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    let unique: BTreeSet<String> = posts.iter().map(|p| p.key()).collect();
    assert_eq!(unique, expected, "nothing lost across the outage");
    assert!(posts.len() - unique.len() <= 40, "at most one page repeated: {}", posts.len() - unique.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reddit_follows_after_to_close_a_gap_and_no_further() {
    let server = TestServer::start().await;
    *server.state.reddit.lock().unwrap() = (1..=35).collect();
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    // Delivered up to p5 before: p6..p35 are new, three full pages and part of a fourth.
    let mark = ingest::crawl::watermark::Watermark {
        at_us: reddit_created(5) * 1_000_000,
        ids: vec!["p5".into()],
        undated: vec![],
    };
    let reddit = SourceId::new("reddit_test").unwrap();
    Checkpoints::open(dir.path()).unwrap().save(&reddit, "r/saigon", &mark.encode()).unwrap();
    let toml = format!(
        "[defaults]\nbackoff_initial_ms = 20\n\n[[reddit]]\nname = \"reddit_test\"\nbase_url = \"{}\"\nsubreddits = [\"saigon\"]\npoll_interval_ms = 1000\n",
        server.base()
    );
    let settings = settings(&toml, &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    let posts = read_posts(&kafka, 30, Duration::from_millis(1500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    let keys: BTreeSet<String> = posts.iter().map(|p| p.key()).collect();
    let expected: BTreeSet<String> = (6..=35).map(|i| format!("reddit_test:p{i}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(posts.len(), 30, "a post arrived twice");
    let log: Vec<String> = server.state.requests().into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        log[..4],
        [
            "/r/saigon/new.json",
            "/r/saigon/new.json?after=t3_p26",
            "/r/saigon/new.json?after=t3_p16",
            "/r/saigon/new.json?after=t3_p6"
        ]
    );
    // Later polls find nothing new on the first page and stop there.
    assert!(log[4..].iter().all(|p| p == "/r/saigon/new.json"), "{log:?}");
    assert!(posts.iter().all(|p| p.places == [schema::PlaceId::new("district_3").unwrap()]));
}

/// A stream that keeps failing turns the ingest stage unhealthy, naming the source and why, while
/// it is paused; once a poll succeeds again it is healthy and its posts come through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_source_is_named_in_health_until_it_recovers() {
    let server = TestServer::start().await;
    server.set_statuses(1..=10);
    server.script([Scripted::Status(503), Scripted::Status(503), Scripted::Status(503)]);
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    Checkpoints::open(dir.path()).unwrap().save(&source(), "tag:saigon", "0").unwrap();
    let toml = mastodon_sources(&server.base())
        .replace("backoff_max_ms = 200", "backoff_max_ms = 200\npause_after_failures = 3\npause_ms = 1500");
    let settings = settings(&toml, &kafka, dir.path());
    let health = stagekit::Health::default();
    let shared =
        ingest::build_shared(&settings, schema::author::AuthorHasher::development(), health.stage(StageName::Ingest))
            .unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared, shutdown.clone()));

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        let (healthy, report) = health.report();
        if !healthy {
            break report;
        }
        assert!(std::time::Instant::now() < deadline, "never unhealthy: {report}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(health.failing(), [StageName::Ingest], "{report}");
    let why = report["stages"]["ingest"]["source mastodon_test/tag:saigon"].as_str().unwrap_or_default().to_owned();
    assert!(why.starts_with("failing, paused for 1 s") && why.contains("503"), "{report}");

    let posts = read_posts(&kafka, expected_mastodon_keys(1..=10).len(), Duration::from_millis(500)).await;
    assert_eq!(posts.len(), expected_mastodon_keys(1..=10).len());
    assert!(health.report().0, "healthy again after a good poll: {}", health.report().1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
}

/// A feed that answers every poll but whose every item must be dropped (here: none has text)
/// looks alive to the backoff; after `pause_after_failures` such polls the stage is unhealthy,
/// naming the source, and healthy again once a poll gives a post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_yielding_only_dropped_items_is_named_in_health() {
    use axum::{extract::State, routing::get, Router};
    let mended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = Router::new()
        .route(
            "/rss",
            get(|State(mended): State<Arc<std::sync::atomic::AtomicBool>>| async move {
                let (a, b) = if mended.load(std::sync::atomic::Ordering::Relaxed) {
                    ("Ngập ở Quận 1", "Kẹt xe ở Quận 1")
                } else {
                    ("", "")
                };
                format!(
                    "<rss version=\"2.0\"><channel><title>t</title>\
                     <item><title>{a}</title><guid>g1</guid><pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate></item>\
                     <item><title>{b}</title><guid>g2</guid><pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate></item>\
                     </channel></rss>"
                )
            }),
        )
        .with_state(mended.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let toml = format!(
        "[defaults]\npause_after_failures = 3\n\n[[feed]]\nname = \"feed_test\"\nurl = \"{base}/rss\"\npoll_interval_ms = 100\nrequire_place = false\n"
    );
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&toml, &kafka, dir.path());
    let health = stagekit::Health::default();
    let shared =
        ingest::build_shared(&settings, schema::author::AuthorHasher::development(), health.stage(StageName::Ingest))
            .unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared, shutdown.clone()));

    let wait = |want_healthy: bool| {
        let health = health.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (healthy, report) = health.report();
                if healthy == want_healthy && report["stages"]["ingest"].get("source feed_test/feed").is_some() {
                    return report;
                }
                assert!(std::time::Instant::now() < deadline, "never healthy={want_healthy}: {report}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let report = wait(false).await;
    let why = report["stages"]["ingest"]["source feed_test/feed"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("only items that had to be dropped"), "{report}");
    // The feed mends: its next poll gives posts, and the source is healthy again.
    mended.store(true, std::sync::atomic::Ordering::Relaxed);
    wait(true).await;
    assert_eq!(read_posts(&kafka, 2, Duration::from_millis(300)).await.len(), 2);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
}
