//! `citypulse demo` (what `make demo` runs): the whole pipeline on the embedded default. The bus
//! is librdkafka's in-process mock cluster, ClickHouse a child process (`clickhouse`), the source
//! the shipped sample replayed with its times moved to end now (`sample`); ingest, analyze, store
//! and serve run as under `citypulse run`. When every post is stored it evaluates the demo's alert
//! rules, prints the week's trends and the alerts with their evidence, and serves the dashboard
//! until Ctrl-C (`--once`: exits after printing).

mod clickhouse;
mod sample;

use super::stages::run_stages_until;
use crate::telemetry;
use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use schema::author::AuthorHasher;
use schema::config::Config;
use stagekit::{Health, StageName};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The demo's database in its own ClickHouse.
const DATABASE: &str = "citypulse_demo";
/// Longest wait for the sample to go through (the model on two slow cores: ~1 min for 600 posts).
const PIPELINE_LIMIT: Duration = Duration::from_secs(900);

pub fn run(cli: &crate::cli::Cli, once: bool) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    // The demo talks through its progress and tables; the log says only what went wrong, unless
    // RUST_LOG asks for more.
    let mut quiet = config.clone();
    quiet.services.telemetry.log_level = "warn".into();
    super::init_logging(cli, &quiet);
    let started = Instant::now();
    let work_dir = config.demo.work_dir.clone();
    // A fresh run: the replay cursor and the demo's database start empty.
    let _ = std::fs::remove_dir_all(work_dir.join("ingest-state"));
    let step = Instant::now();
    let server = clickhouse::ChildClickHouse::start(&work_dir, config.demo.clickhouse_http_port)?;
    println!("demo: ClickHouse started on {} ({:.1} s)", server.url, step.elapsed().as_secs_f64());
    let mock = rdkafka::mocking::MockCluster::new(1).context("starting the in-process Kafka mock cluster")?;
    let kafka = &config.services.kafka;
    for topic in [&kafka.topic_raw, &kafka.topic_analyzed, &kafka.topic_dlq] {
        mock.create_topic(topic, kafka.partitions, 1)
            .with_context(|| format!("creating {topic} in the mock cluster"))?;
    }
    let limits = config.services.limits.limits();
    let sample = sample::shifted(&config.demo.replay_file, &work_dir, &limits, chrono::Utc::now())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let receiver = runtime.block_on(receiver(received.clone()))?;
    let demo = demo_config(&config, &server.url, &mock.bootstrap_servers(), &sample.path, &receiver)?;
    println!(
        "demo: {} posts from {} (times moved by {} s to end now) replayed through an in-process Kafka; \
         author handles are hashed with the public development key",
        sample.posts.len(),
        config.demo.replay_file.display(),
        sample.shift.num_seconds()
    );
    let result = runtime.block_on(pipeline(&demo, &sample, once, &received));
    drop(server);
    println!("demo: done in {:.0} s", started.elapsed().as_secs_f64());
    result
}

/// The configuration the demo runs: the loaded one with the demo's bus, database, source, rules and
/// dashboard port.
fn demo_config(
    config: &Config,
    clickhouse: &str,
    brokers: &str,
    replay: &std::path::Path,
    receiver: &str,
) -> Result<Config> {
    let mut demo = config.clone();
    demo.services.kafka.brokers = brokers.to_owned();
    demo.services.clickhouse.url = clickhouse.parse()?;
    demo.services.clickhouse.database = DATABASE.into();
    demo.services.clickhouse.cluster = None; // the demo's ClickHouse is one child server
    demo.services.serve.listen = format!("127.0.0.1:{}", config.demo.serve_port);
    demo.services.serve.public_url = Some(format!("http://127.0.0.1:{}", config.demo.serve_port).parse()?);
    demo.services.serve.token.clear();
    demo.services.ingest.state_dir = config.demo.work_dir.join("ingest-state");
    demo.sources = toml::from_str(&format!(
        "[[replay]]\nname = \"demo\"\npath = {:?}\nposts_per_second = {}\n",
        replay.display().to_string(),
        config.demo.posts_per_second
    ))?;
    let rules = std::fs::read_to_string(&config.demo.alerts_file)
        .with_context(|| format!("reading the demo's alert rules {}", config.demo.alerts_file.display()))?;
    let mut alerts: schema::config::AlertsConfig =
        toml::from_str(&rules).with_context(|| format!("{}", config.demo.alerts_file.display()))?;
    let topics: Vec<&str> = config.topics.ids().map(|t| t.as_str()).collect();
    let places: Vec<&str> = config.places.place.iter().map(|p| p.id.as_str()).collect();
    let mut problems = schema::config::Problems::default();
    let file = config.demo.alerts_file.display().to_string();
    alerts.validate(Some(&topics), Some(&places), None, &mut problems.file(&file));
    if !problems.0.is_empty() {
        bail!("{problems}");
    }
    for n in alerts.notifier.iter_mut().filter(|n| n.url.is_some()) {
        n.url = Some(receiver.parse()?);
    }
    demo.alerts = alerts;
    Ok(demo)
}

/// An in-process webhook receiver that prints what it gets (so no notifier retries against a port
/// where nothing listens). Returns its URL.
async fn receiver(received: Arc<Mutex<Vec<String>>>) -> Result<String> {
    use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Router};
    async fn take(State(seen): State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap, body: Bytes) -> &'static str {
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let kind = headers.get("x-citypulse-event").and_then(|v| v.to_str().ok()).unwrap_or("?");
        let line = format!("{kind} {} {} {}", event["rule"], event["topic"], event["place"]).replace('"', "");
        println!("demo receiver: {line}");
        if let Ok(mut seen) = seen.lock() {
            seen.push(line);
        }
        "ok"
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/demo-receiver", listener.local_addr()?);
    let app = Router::new().route("/demo-receiver", post(take)).with_state(received);
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Ok(url)
}

async fn pipeline(
    demo: &Config,
    sample: &sample::Sample,
    once: bool,
    received: &Arc<Mutex<Vec<String>>>,
) -> Result<ExitCode> {
    let _ = telemetry::prometheus();
    // Every run starts from an empty database: the sample's times move with each run, so a
    // previous run's rows would count twice.
    store::client(&demo.services.clickhouse)
        .query(&format!("DROP DATABASE IF EXISTS {DATABASE}"))
        .execute()
        .await
        .context("clearing the demo's database")?;
    let shutdown = telemetry::shutdown_on_signals();
    let stages_stop = CancellationToken::new();
    let health = Health::default();
    let model = analyze::ModelOptions::from_config(&demo.services.analyze);
    let stages = vec![StageName::Ingest, StageName::Analyze, StageName::Store, StageName::Serve];
    let task = {
        let (demo, health, stop) = (demo.clone(), health.clone(), stages_stop.clone());
        tokio::spawn(async move {
            run_stages_until(&demo, &stages, &health, Some(AuthorHasher::development()), &model, false, stop).await
        })
    };
    let client = store::client(&demo.services.clickhouse);
    let step = Instant::now();
    let stored = progress(&client, sample.posts.len() as u64, &shutdown, &task).await;
    let outcome = match stored {
        Ok(()) => {
            println!("demo: ingested, analysed and stored in {:.1} s", step.elapsed().as_secs_f64());
            report(demo, client).await
        }
        Err(e) => Err(e),
    };
    if outcome.is_ok() && !once && !shutdown.is_cancelled() {
        println!(
            "demo: serving the dashboard at http://127.0.0.1:{}/ and evaluating alerts every minute; Ctrl-C stops",
            demo.demo.serve_port
        );
        let settings = alert::AlertSettings::from_config(demo)?;
        let deps = alert::AlertDeps::from_config(demo, health.stage(StageName::Alert))?;
        let alerts = tokio::spawn(alert::run(settings, deps, shutdown.clone()));
        shutdown.cancelled().await;
        let _ = alerts.await;
    }
    stages_stop.cancel();
    let stopped = task.await.map_err(|e| anyhow::anyhow!("the pipeline panicked: {e}"))?;
    // A stage's own failure explains a stalled pipeline better than the stall does.
    stopped.context("the pipeline failed")?;
    outcome?;
    let got = received.lock().map(|r| r.len()).unwrap_or(0);
    println!("demo: the in-demo webhook receiver got {got} event(s)");
    Ok(ExitCode::SUCCESS)
}

/// Shows ingested / analysed / stored until every sample post is stored, the pipeline fails, or
/// Ctrl-C.
async fn progress(
    client: &::clickhouse::Client,
    total: u64,
    shutdown: &CancellationToken,
    task: &tokio::task::JoinHandle<Result<()>>,
) -> Result<()> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = |name: &str| {
        let b = bars.add(ProgressBar::new(total));
        b.set_style(style.clone());
        b.set_prefix(name.to_owned());
        b
    };
    let (ingested, analysed, stored) = (bar("ingested"), bar("analysed"), bar("stored"));
    let started = Instant::now();
    loop {
        let metrics = telemetry::prometheus().render();
        ingested.set_position(counter(&metrics, "citypulse_ingest_produced_posts_total").min(total));
        analysed.set_position(counter(&metrics, "citypulse_analyze_posts_total").min(total));
        let n: u64 = client
            .query(&format!("SELECT toUInt64(greatest(sum(sign), 0)) FROM {DATABASE}.posts"))
            .fetch_one()
            .await
            .unwrap_or(0);
        stored.set_position(n.min(total));
        if n >= total {
            for b in [&ingested, &analysed, &stored] {
                b.finish();
            }
            return Ok(());
        }
        if task.is_finished() {
            bail!("the pipeline stopped before every post was stored ({n} of {total}); see the log above");
        }
        if shutdown.is_cancelled() {
            bail!("interrupted with {n} of {total} posts stored");
        }
        if started.elapsed() > PIPELINE_LIMIT {
            bail!("only {n} of {total} posts stored after {} s", PIPELINE_LIMIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The sum of a Prometheus counter over its labels.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn queries_client(demo: &Config) -> ::clickhouse::Client {
    store::client(&demo.services.clickhouse)
}

/// Evaluates the demo's rules once (recording and delivering what fires) and prints the week's
/// trends and the alerts.
async fn report(demo: &Config, client: ::clickhouse::Client) -> Result<()> {
    let settings = alert::AlertSettings::from_config(demo)?;
    let deps = alert::AlertDeps::from_config(demo, stagekit::StageHealth::detached(StageName::Alert))?;
    let events = alert::evaluate_once(&settings, deps, chrono::Utc::now(), false).await?;
    let zone = store::CityZone::new(&demo.services.city.time_zone)?;
    let queries = store::Queries::new(client, store::Database::new(DATABASE)?, zone);
    let now = chrono::Utc::now();
    let query =
        store::TrendQuery::new(now - chrono::Duration::days(7), now, store::Dimension::Topic, store::Granularity::Day);
    let rows = queries.trends(&query).await?;
    let (stored, keys): (u64, u64) = queries_client(demo)
        .query(&format!("SELECT count(), uniqExact(key) FROM {DATABASE}.posts FINAL WHERE sign = 1"))
        .fetch_one()
        .await?;
    println!("\nStored: {stored} posts, {keys} distinct keys");
    let by_day = queries
        .trends(&store::TrendQuery::new(
            now - chrono::Duration::days(30),
            now,
            store::Dimension::Source,
            store::Granularity::Day,
        ))
        .await?;
    let days: Vec<String> = by_day.iter().map(|r| format!("{} {}", r.bucket.format("%Y-%m-%d"), r.posts)).collect();
    println!("Posts per day: {}", days.join(", "));
    println!("\nThe last 7 days by topic (posts, net sentiment):");
    let mut days: Vec<String> = rows.iter().map(|r| r.bucket.format("%m-%d").to_string()).collect();
    days.dedup();
    print!("  {:<24}", "topic");
    for d in &days {
        print!(" {d:>11}");
    }
    println!();
    let mut topics: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    for t in topics {
        print!("  {t:<24}");
        for d in &days {
            match rows.iter().find(|r| r.key == t && r.bucket.format("%m-%d").to_string() == *d) {
                Some(r) => print!(" {:>4} {:>+6.2}", r.posts, r.net_sentiment),
                None => print!(" {:>11}", "·"),
            }
        }
        println!();
    }
    println!("\nAlerts raised ({}):", events.len());
    for e in &events {
        println!(
            "  {} {} {} topic={} place={} observed={:.2} posts={}",
            e.event, e.severity, e.rule, e.topic, e.place, e.observed, e.posts
        );
        for p in e.evidence.iter().take(3) {
            println!("      {:<8} {}", p.sentiment, p.text_redacted.chars().take(90).collect::<String>());
        }
        if let Some(url) = &e.dashboard_url {
            println!("      {url}");
        }
    }
    // Emerging issues of yesterday and today, saved for the dashboard (the emerging stage's work).
    let job = emerging::Job::new(
        queries_client(demo),
        store::Database::new(DATABASE)?,
        demo.tz(),
        demo.services.emerging.clone(),
    );
    let today = job.today();
    for date in [today - chrono::Duration::days(1), today] {
        let report = job.compute(date).await.with_context(|| format!("emerging issues of {date}"))?;
        job.save(&report).await?;
        println!("\n{}", report.table().trim_end());
    }
    println!("\nDashboard: http://127.0.0.1:{}/", demo.demo.serve_port);
    Ok(())
}
