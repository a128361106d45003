//! `citypulse emerging [--date D] [--json] [--saved] [--propose N]`: the day's emerging issues,
//! computed and saved (what the `emerging` stage does every hour), printed as a table or as the
//! API's JSON; `--propose N` writes reported group N as a proposed topic block.

use super::store_cmds::{ids, runtime};
use crate::cli::{Cli, EmergingArgs};
use anyhow::{bail, Context, Result};
use emerging::Job;
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
        print!("{}", report.table());
    }
    if let Some(rank) = args.propose {
        let Some(group) = report.groups.iter().find(|g| g.rank == rank) else {
            bail!("--propose {rank}: the report of {date} has {} reported group(s)", report.groups.len());
        };
        let dir = &config.services.emerging.proposals_dir;
        let path = emerging::proposal::write(dir, date, group)
            .with_context(|| format!("writing the proposal into {}", dir.display()))?;
        println!("proposed topic written to {} (review it before adding it to topics.toml)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
