//! `citypulse import FILE --channel NAME [--rejects FILE] [--batch N] [--from-start]`: a channel's
//! export (CSV or JSONL) through the same desk as the intake API, in batches, with a progress bar.
//!
//! Resumable: after every batch the number of records done (and the tally) is saved as a
//! checkpoint in `<ingest.state_dir>/import/` keyed by the channel and the file's full path; the same
//! command after an interruption (Ctrl-C, a crash, ClickHouse or Kafka down) goes on after the last
//! saved batch. A batch that was sent but not checkpointed is sent again and answered `duplicate`
//! (intake_seen), so an interruption at any point loses and doubles nothing.

use super::{Desk, Outcome, Status, Tally};
use crate::cli::{Cli, ImportArgs};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ingest::checkpoint::Checkpoints;
use ingest::parse::intake::{Format, RecordReader};
use schema::author::AuthorHasher;
use schema::SourceId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a checkpoint holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    file: PathBuf,
    /// Records read and answered (accepted, duplicate or rejected).
    records: u64,
    tally: Tally,
    /// Rejections by kind.
    rejected_kinds: BTreeMap<String, u64>,
    complete: bool,
}

/// A batch the ledger could not take is tried again this many times, backing off, before the
/// import stops (its progress saved).
const ATTEMPTS: u32 = 6;

pub fn run(cli: &Cli, args: &ImportArgs) -> Result<ExitCode> {
    let config = crate::commands::load_config(cli)?;
    crate::commands::init_logging(cli, &config);
    let Some(channel) = config.sources.intake_channel(&args.channel) else {
        let known: Vec<&str> = config.sources.intake_names().collect();
        bail!(
            "--channel {:?} is not an enabled [[intake]] channel in sources.toml (channels: {known:?})",
            args.channel
        );
    };
    let channel = channel.name.clone();
    let format = Format::from_path(&args.file)
        .with_context(|| format!("{}: name the file .csv, .jsonl or .ndjson", args.file.display()))?;
    let path = std::fs::canonicalize(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let checkpoints = Checkpoints::open(&config.services.ingest.state_dir.join("import"))?;
    let stream = hex::encode(&Sha256::digest(path.to_string_lossy().as_bytes())[..6]);
    let mut progress = match (args.from_start, checkpoints.load(&channel, &stream)?) {
        (false, Some(saved)) => serde_json::from_str(&saved).context("reading the import's checkpoint")?,
        _ => Progress { file: path.clone(), ..Progress::default() },
    };
    if progress.complete {
        println!("{} was imported into {channel} already: {}", path.display(), summary(&progress));
        println!("(--from-start reads it again; what was imported comes back as duplicates)");
        return Ok(ExitCode::SUCCESS);
    }
    let hasher = AuthorHasher::from_env()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let desk = Desk::from_config(&config, hasher).await?;
        let shutdown = crate::telemetry::shutdown_on_signals();
        let save = |p: &Progress| checkpoints.save(&channel, &stream, &serde_json::to_string(p).unwrap_or_default());
        let importer = Importer { desk: &desk, channel: &channel, batch: args.batch as usize, shutdown: &shutdown };
        let outcome = importer.import(&path, format, args.rejects.as_deref(), &mut progress, save).await;
        print_summary(&path, &channel, &progress, args.rejects.as_deref());
        match outcome? {
            true => Ok(ExitCode::SUCCESS),
            false => {
                println!("interrupted after record {}; run the same command to go on from there", progress.records);
                Ok(ExitCode::from(130))
            }
        }
    })
}

struct Importer<'a> {
    desk: &'a Desk,
    channel: &'a SourceId,
    batch: usize,
    shutdown: &'a CancellationToken,
}

impl Importer<'_> {
    /// Reads the file from `progress.records` on; `Ok(false)` when interrupted.
    async fn import(
        &self,
        path: &Path,
        format: Format,
        rejects: Option<&Path>,
        progress: &mut Progress,
        save: impl Fn(&Progress) -> Result<(), ingest::checkpoint::CheckpointError>,
    ) -> Result<bool> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = RecordReader::new(BufReader::with_capacity(1 << 16, file), format)
            .with_context(|| format!("{}", path.display()))?;
        let mut rejects = open_rejects(rejects)?;
        let bar = progress_bar(size);
        let mut index: u64 = 0;
        let mut batch = Vec::with_capacity(self.batch);
        let mut last_note = Instant::now();
        loop {
            let next = reader.next_record().transpose().with_context(|| format!("reading {}", path.display()))?;
            let done = next.is_none();
            if let Some(record) = next {
                if index >= progress.records {
                    batch.push((index as usize, record));
                }
                index += 1;
                if batch.len() < self.batch {
                    continue;
                }
            }
            if !batch.is_empty() {
                let outcomes = self.take(std::mem::take(&mut batch)).await?;
                write_rejects(&mut rejects, &outcomes)?;
                record(progress, &outcomes, index);
                save(progress)?;
            }
            bar.set_position(reader.position());
            bar.set_message(summary(progress));
            // Without a terminal (a cron job, a log), a line every 10 s instead of the bar.
            if bar.is_hidden() && last_note.elapsed() >= Duration::from_secs(10) {
                eprintln!("import: {} of {} bytes, {}", reader.position(), size, summary(progress));
                last_note = Instant::now();
            }
            if done {
                progress.complete = true;
                save(progress)?;
                bar.finish();
                return Ok(true);
            }
            if self.shutdown.is_cancelled() {
                bar.abandon();
                return Ok(false);
            }
        }
    }

    /// One batch through the desk, retried while the ledger is unreachable.
    async fn take(&self, batch: Vec<(usize, ingest::parse::intake::ReadRecord)>) -> Result<Vec<Outcome>> {
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            match self.desk.take(self.channel.as_str(), batch.clone()).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(e) if attempt < ATTEMPTS && !self.shutdown.is_cancelled() => {
                    tracing::warn!(error = %e, attempt, "the intake ledger is unavailable; trying the batch again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => return Err(e).context("stopped; run the same command to go on"),
            }
        }
        unreachable!("the last attempt returns")
    }
}

fn record(progress: &mut Progress, outcomes: &[Outcome], records: u64) {
    progress.tally.add(Tally::of(outcomes));
    for o in outcomes.iter().filter(|o| o.status == Status::Rejected) {
        *progress.rejected_kinds.entry(o.kind.unwrap_or("other").to_owned()).or_default() += 1;
    }
    progress.records = records;
}

fn progress_bar(size: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    let style = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

fn open_rejects(path: Option<&Path>) -> Result<Option<std::fs::File>> {
    path.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("cannot write the rejects file {}", p.display()))
    })
    .transpose()
}

fn write_rejects(file: &mut Option<std::fs::File>, outcomes: &[Outcome]) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    let mut out = Vec::new();
    for o in outcomes.iter().filter(|o| o.status == Status::Rejected) {
        serde_json::to_writer(&mut out, o)?;
        out.push(b'\n');
    }
    file.write_all(&out).context("writing the rejects file")?;
    file.sync_data().context("writing the rejects file")
}

fn summary(p: &Progress) -> String {
    let t = p.tally;
    format!("{} records: {} accepted, {} duplicate, {} rejected", p.records, t.accepted, t.duplicate, t.rejected)
}

fn print_summary(path: &Path, channel: &SourceId, p: &Progress, rejects: Option<&Path>) {
    println!("{} → {channel}: {}", path.display(), summary(p));
    for (kind, n) in &p.rejected_kinds {
        println!("  rejected {kind}: {n}");
    }
    if let (Some(r), true) = (rejects, p.tally.rejected > 0) {
        println!("  rejected records (number, id, reason): {}", r.display());
    }
}
