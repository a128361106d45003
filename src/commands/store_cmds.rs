//! The store's commands besides the stage itself (see `stages`): `citypulse migrate`, `citypulse
//! trends` (analysts) and `citypulse dlq` (operators). The logic lives in the `store` crate.

use super::time_args::parse_instant;
use crate::cli::{ByArg, Cli, DlqAction, FormatArg, GranularityArg, TrendsArgs, TrendsView};
use anyhow::{Context, Result};
use schema::config::Config;
use schema::SentimentLabel;
use std::process::ExitCode;
use std::time::Duration;
use store::{CityZone, Database, Dimension, Granularity, Queries, TrendQuery};

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// What a command reading ClickHouse starts from: the configuration (logging set up), the client,
/// database and zone, a runtime, and the migrations applied.
pub type Migrated = (Config, clickhouse::Client, Database, CityZone, tokio::runtime::Runtime);

pub fn open_migrated(cli: &Cli) -> Result<Migrated> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let (client, db, zone) = ids(&config)?;
    let rt = runtime()?;
    rt.block_on(store::migrate(&client, &db, zone)).context("applying ClickHouse migrations")?;
    Ok((config, client, db, zone, rt))
}

pub fn ids(config: &Config) -> Result<(clickhouse::Client, Database, CityZone)> {
    let ch = &config.services.clickhouse;
    Ok((store::client(ch), Database::from_config(ch)?, CityZone::new(&config.services.city.time_zone)?))
}

pub fn migrate(cli: &Cli) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let (client, db, zone) = ids(&config)?;
    let rt = runtime()?;
    let report = rt.block_on(store::migrate(&client, &db, zone))?;
    println!("migrations applied: {:?}; already applied: {:?}", report.applied, report.already);
    // Posts stored before migration 008 are invisible to saved searches until re-indexed.
    let queries = Queries::new(client, db, zone);
    let all_time = (chrono::DateTime::UNIX_EPOCH, chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let unindexed = rt.block_on(queries.unindexed_posts(all_time.0, all_time.1))?;
    if unindexed > 0 {
        println!(
            "{unindexed} stored posts have no search index yet (stored before saved searches): \
             run `citypulse searches reindex` with the store stopped"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn trends(cli: &Cli, args: &TrendsArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let (client, db, zone) = ids(&config)?;
    let tz = config.tz();
    let now = chrono::Utc::now();
    let queries = Queries::new(client, db, zone);
    let rt = runtime()?;
    if let Some(TrendsView::TopPosts { topic, sentiment, since, limit }) = &args.view {
        let sentiment = sentiment.as_deref().map(parse_sentiment).transpose()?;
        let since = parse_instant(since, tz, now)?;
        let posts = rt.block_on(queries.top_posts(topic, sentiment, since, now, *limit))?;
        for p in posts {
            let at =
                chrono::DateTime::from_timestamp(i64::from(p.created_at), 0).unwrap_or_default().with_timezone(&tz);
            println!(
                "{}  {:<8} {:+.2}  {}  {}",
                at.format("%Y-%m-%d %H:%M"),
                p.sentiment,
                p.score,
                p.key,
                p.text_redacted
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let by = match args.by {
        ByArg::Topic => Dimension::Topic,
        ByArg::Place => Dimension::Place,
        ByArg::Source => Dimension::Source,
    };
    let granularity = match args.granularity {
        GranularityArg::Hour => Granularity::Hour,
        GranularityArg::Day => Granularity::Day,
    };
    let since = parse_instant(&args.since, tz, now)?;
    let until = args.until.as_deref().map(|u| parse_instant(u, tz, now)).transpose()?.unwrap_or(now);
    let query = TrendQuery {
        topic: args.topic.clone(),
        sentiment: args.sentiment.as_deref().map(parse_sentiment).transpose()?,
        ..TrendQuery::new(since, until, by, granularity)
    };
    let rows = rt.block_on(queries.trends(&query))?;
    let bucket_format = if args.granularity == GranularityArg::Hour { "%Y-%m-%d %H:00" } else { "%Y-%m-%d" };
    match args.format {
        FormatArg::Json => {
            for r in &rows {
                let line = serde_json::json!({"bucket": r.bucket.to_rfc3339(), "key": r.key, "posts": r.posts, "avg_score": r.avg_score, "net_sentiment": r.net_sentiment, "positive": r.positive, "neutral": r.neutral, "negative": r.negative});
                println!("{line}");
            }
        }
        FormatArg::Csv => {
            println!("{}", TREND_COLUMNS.map(|c| c.0).join(","));
            for r in &rows {
                println!("{}", trend_fields(r, bucket_format, 4).join(","));
            }
        }
        FormatArg::Table => {
            let line = |fields: [String; 8]| {
                let cells = TREND_COLUMNS.iter().zip(fields).map(|(&(_, width, left), f)| {
                    if left {
                        format!("{f:<width$}")
                    } else {
                        format!("{f:>width$}")
                    }
                });
                cells.collect::<Vec<_>>().join(" ")
            };
            println!("{}", line(TREND_COLUMNS.map(|c| c.0.replace('_', " "))));
            for r in &rows {
                println!("{}", line(trend_fields(r, bucket_format, 3)));
            }
            if rows.is_empty() {
                println!("(no posts in that period)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The trend columns in CSV and table order: name, table width, left-aligned.
const TREND_COLUMNS: [(&str, usize, bool); 8] = [
    ("bucket", 16, true),
    ("key", 20, true),
    ("posts", 7, false),
    ("avg_score", 9, false),
    ("net_sentiment", 13, false),
    ("positive", 8, false),
    ("neutral", 7, false),
    ("negative", 8, false),
];

/// One trend row as text in [`TREND_COLUMNS`] order; the two ratios with `decimals` places.
fn trend_fields(r: &store::TrendRow, bucket_format: &str, decimals: usize) -> [String; 8] {
    [
        r.bucket.format(bucket_format).to_string(),
        r.key.clone(),
        r.posts.to_string(),
        format!("{:.decimals$}", r.avg_score),
        format!("{:.decimals$}", r.net_sentiment),
        r.positive.to_string(),
        r.neutral.to_string(),
        r.negative.to_string(),
    ]
}

fn parse_sentiment(s: &str) -> Result<SentimentLabel> {
    SentimentLabel::parse(s).ok_or_else(|| anyhow::anyhow!("--sentiment {s:?}: use negative, neutral or positive"))
}

pub fn dlq(cli: &Cli, action: &DlqAction) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let kafka = &config.services.kafka;
    let entries = store::dlq::read_all(kafka, Duration::from_secs(10))?;
    match action {
        DlqAction::List { limit } => {
            println!("{:>4} {:>10} {:<8} {:<22} {:<28} reason", "part", "offset", "stage", "kind", "source message");
            for e in entries.iter().rev().take(*limit) {
                match &e.record {
                    Ok(r) => println!(
                        "{:>4} {:>10} {:<8} {:<22} {:<28} {}",
                        e.partition,
                        e.offset,
                        r.stage.as_str(),
                        r.error_kind,
                        format!("{}/{}@{}", r.topic, r.partition, r.offset),
                        r.reason.chars().take(100).collect::<String>()
                    ),
                    Err(why) => println!("{:>4} {:>10} unreadable: {why}", e.partition, e.offset),
                }
            }
        }
        DlqAction::Show { offset } => {
            let entry = entries
                .iter()
                .find(|e| e.offset == *offset)
                .with_context(|| format!("no DLQ entry at offset {offset}"))?;
            match &entry.record {
                Ok(r) => println!("{}", serde_json::to_string_pretty(r)?),
                Err(why) => println!("unreadable entry: {why}"),
            }
        }
        DlqAction::Replay { stage } => {
            let wanted: Vec<store::dlq::DlqEntry> = entries
                .into_iter()
                .filter(|e| stage.as_deref().is_none_or(|s| e.record.as_ref().is_ok_and(|r| r.stage.as_str() == s)))
                .collect();
            replay(&config, &wanted)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Store-stage entries go through the writer again; analyzer-stage ones are re-produced to
/// `posts.raw` from their offset there (while it is retained); anything else is reported.
fn replay(config: &Config, wanted: &[store::dlq::DlqEntry]) -> Result<()> {
    use schema::Stage;
    let stage_of = |e: &store::dlq::DlqEntry| e.record.as_ref().ok().map(|r| r.stage);
    let (store_entries, rest): (Vec<_>, Vec<_>) =
        wanted.iter().cloned().partition(|e| stage_of(e) != Some(Stage::Analyze));
    let rt = runtime()?;
    if !store_entries.is_empty() {
        let writer = store::writer_for(&config.services)?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let report = rt.block_on(store::dlq::replay(&store_entries, &writer, &shutdown))?;
        println!("store stage: replayed {} entries: {:?}", report.replayed.len(), report.write);
        for (p, o, why) in report.skipped {
            println!("skipped {p}/{o}: {why}");
        }
    }
    if !rest.is_empty() {
        let kafka = &config.services.kafka;
        let timeout = Duration::from_millis(u64::from(kafka.delivery_timeout_ms));
        let report = rt.block_on(store::replay_raw::replay_analyze(kafka, &rest, timeout))?;
        println!("analyze stage: {} raw posts sent to {} again", report.replayed.len(), kafka.topic_raw);
        for (p, o, why) in report.skipped {
            println!("skipped {p}/{o}: {why}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_trend_row_prints_the_same_fields_in_csv_and_table_order() {
        let zone: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let row = store::TrendRow {
            bucket: zone.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
            key: "flooding".into(),
            posts: 3,
            avg_score: 0.123_456,
            net_sentiment: -1.0 / 3.0,
            positive: 1,
            neutral: 0,
            negative: 2,
        };
        let csv = trend_fields(&row, "%Y-%m-%d %H:00", 4).join(",");
        assert_eq!(csv, "2026-11-26 10:00,flooding,3,0.1235,-0.3333,1,0,2");
        assert_eq!(trend_fields(&row, "%Y-%m-%d", 3)[..5], ["2026-11-26", "flooding", "3", "0.123", "-0.333"]);
    }
}
