//! `citypulse searches list | trends [NAME | --query Q] | reindex`: the analysts' saved searches
//! from the terminal, and the operator's one-off indexing of posts stored before migration 008.

use super::store_cmds::open_migrated;
use super::time_args::parse_instant;
use crate::cli::{Cli, GranularityArg, SearchesAction};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use schema::config::searches::SavedSearch;
use std::io::IsTerminal;
use std::process::ExitCode;
use store::{Granularity, Queries};

pub fn run(cli: &Cli, action: &SearchesAction) -> Result<ExitCode> {
    let (config, client, db, zone, rt) = open_migrated(cli)?;
    match action {
        SearchesAction::List => {
            let all = rt.block_on(crate::searches::all(&config.searches, &client, &db))?;
            if all.is_empty() {
                println!("no saved searches (add [[search]] to searches.toml, or save one through the API)");
            }
            for s in all {
                let by = s.saved_by.map(|b| format!(" by {b}")).unwrap_or_default();
                println!("{:<24} {:<6}{by}  {}", s.search.name, s.origin, s.search.query);
                if !s.search.places.is_empty() || !s.search.sources.is_empty() {
                    println!("{:<24} places {:?}, sources {:?}", "", s.search.places, s.search.sources);
                }
            }
        }
        SearchesAction::Trends { name, query, since, until, granularity } => {
            let search = match (name, query) {
                (Some(name), None) => {
                    rt.block_on(crate::searches::find(&config.searches, &client, &db, name))?
                        .with_context(|| format!("no saved search {name:?} (see `citypulse searches list`)"))?
                        .search
                }
                (None, Some(q)) => SavedSearch {
                    name: "query".into(),
                    query: q.clone(),
                    places: vec![],
                    sources: vec![],
                    description: String::new(),
                },
                _ => bail!("name a saved search or give --query, not both"),
            };
            let condition = search.sql().map_err(|e| anyhow::anyhow!("the query, {e}"))?;
            let tz = config.tz();
            let now = chrono::Utc::now();
            let since = parse_instant(since, tz, now)?;
            let until = until.as_deref().map(|u| parse_instant(u, tz, now)).transpose()?.unwrap_or(now);
            let g = match granularity {
                GranularityArg::Hour => Granularity::Hour,
                GranularityArg::Day => Granularity::Day,
            };
            let queries = Queries::new(client.clone(), db.clone(), zone);
            let started = std::time::Instant::now();
            let (rows, stats) = rt.block_on(queries.search_series(&condition, since, until, g))?;
            let took = started.elapsed();
            let unindexed = rt.block_on(queries.unindexed_posts(since, until))?;
            println!("{}: {}", search.name, search.query);
            println!(
                "{:<16} {:>7} {:>9} {:>8} {:>9} {:>8}",
                "bucket", "posts", "negative", "neutral", "positive", "net"
            );
            for r in &rows {
                let at = r.bucket.format(if g == Granularity::Hour { "%Y-%m-%d %H:00" } else { "%Y-%m-%d" });
                println!(
                    "{:<16} {:>7} {:>9} {:>8} {:>9} {:>+8.2}",
                    at.to_string(),
                    r.posts,
                    r.negative,
                    r.neutral,
                    r.positive,
                    r.net_sentiment
                );
            }
            println!(
                "{} posts in {} buckets; {} of {} days computed, the rest cached ({:.2} s)",
                rows.iter().map(|r| r.posts).sum::<i64>(),
                rows.len(),
                stats.computed,
                stats.days,
                took.as_secs_f64()
            );
            if unindexed > 0 {
                println!("{unindexed} posts of the range predate searches and are not counted: run `citypulse searches reindex`");
            }
        }
        SearchesAction::Reindex { while_storing } => {
            // A re-analysis stored while reindex cancels the same post's version would cancel it
            // twice: refuse while a store seems to be writing.
            let sql = format!("SELECT toUInt64(count()) FROM {db}.posts WHERE analyzed_at > now() - 120");
            let recent: u64 = rt.block_on(client.query(&sql).fetch_one())?;
            if recent > 0 && !while_storing {
                bail!(
                    "{recent} posts were stored in the last two minutes: stop the store stage first \
                     (or pass --while-storing, accepting that a post re-analysed meanwhile may be counted wrong)"
                );
            }
            reindex(&rt, &client, &db)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reindex(rt: &tokio::runtime::Runtime, client: &clickhouse::Client, db: &store::Database) -> Result<()> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("template"));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let mut total = 0u64;
    let report = rt.block_on(store::searches::reindex(client, db, |day, posts| {
        total += posts;
        let msg = format!("day {day}: {posts} posts re-indexed ({total} so far)");
        match &bar {
            Some(b) => b.set_message(msg),
            None => eprintln!("{msg}"),
        }
    }))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    println!(
        "re-indexed {} posts over {} days in {:.1} s; every stored post is searchable",
        report.posts,
        report.days,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
