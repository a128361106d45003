//! `citypulse emerging [--date D] [--json] [--saved] [--propose N]`: the day's emerging issues,
//! computed and saved (what the `emerging` stage does every hour), printed as a table or as the
//! API's JSON; `--propose N` writes reported group N as a proposed topic block.

use super::store_cmds::{ids, runtime};
use crate::cli::{Cli, EmergingArgs};
use anyhow::{bail, Context, Result};
use emerging::{Job, Report};
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &EmergingArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let (client, db, zone) = ids(&config)?;
    let job = Job::new(client.clone(), db.clone(), config.tz(), config.services.emerging.clone());
    let date = match &args.date {
        Some(d) => {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").with_context(|| format!("--date {d:?}: use YYYY-MM-DD"))?
        }
        None => job.today(),
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        store::migrate(&client, &db, zone).await.context("applying ClickHouse migrations")?;
        if args.saved {
            return job.latest(date).await?.with_context(|| {
                format!("no saved emerging-issues report for {date}: run `citypulse emerging --date {date}`")
            });
        }
        let report = job.compute(date).await.with_context(|| format!("computing the emerging issues of {date}"))?;
        job.save(&report).await.context("saving the report")?;
        anyhow::Ok(report)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    if let Some(rank) = args.propose {
        let Some(group) = report.groups.iter().find(|g| g.rank == rank) else {
            bail!("--propose {rank}: the report of {date} has {} reported group(s)", report.groups.len());
        };
        let dir = &config.services.emerging.proposals_dir;
        let path = emerging::proposal::write(dir, &report.date, group)
            .with_context(|| format!("writing the proposal into {}", dir.display()))?;
        println!("proposed topic written to {} (review it before adding it to topics.toml)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as an analyst reads it in a terminal.
fn table(r: &Report) -> String {
    let mut out = format!(
        "Emerging issues of {}{}: {} unclaimed posts{}, {} baseline day(s) with posts; {} dense group(s), {} reported ({:.1} s)\n",
        r.date,
        if r.is_final { "" } else { " (so far)" },
        r.unclaimed_posts,
        if r.posts_grouped < r.unclaimed_posts { format!(" ({} sampled)", r.posts_grouped) } else { String::new() },
        r.baseline_days_with_posts,
        r.groups_found,
        r.groups.len(),
        r.seconds,
    );
    if r.baseline_days_with_posts == 0 && !r.groups.is_empty() {
        out.push_str("No earlier days to compare with: every dense group counts as new.\n");
    }
    for g in &r.groups {
        let places = g.places.iter().take(3).map(|p| format!("{} ({})", p.place, p.posts)).collect::<Vec<_>>();
        out.push_str(&format!(
            "\n#{} {:?}  {}\n   {} posts, {:.1}x the days before ({:.1}/day), {:.0}% negative{}\n",
            g.rank,
            g.status,
            g.label,
            g.posts,
            g.growth,
            g.baseline_per_day,
            g.share_negative * 100.0,
            if places.is_empty() { String::new() } else { format!(", places: {}", places.join(", ")) },
        ));
        for e in g.examples.iter().take(3) {
            let short: String = e.chars().take(120).collect();
            out.push_str(&format!("   > {short}{}\n", if short.len() < e.len() { "…" } else { "" }));
        }
    }
    out
}
