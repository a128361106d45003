//! `citypulse import FILE --channel NAME [--rejects FILE] [--batch N] [--from-start]`: a channel's
//! export (CSV or JSONL) through the same desk as the intake API, in batches, with a progress bar.
//!
//! Resumable: after every batch the number of records done, the tally and the rejects file's
//! length are saved as a checkpoint in `<ingest.state_dir>/import/`, keyed by the channel and the
//! file's full path, with the file's size and a hash of its first 64 KiB (a different file at the
//! same path is refused, not skipped into). The same command after an interruption (Ctrl-C, a
//! crash, ClickHouse or Kafka down) goes on after the last saved batch: a batch Kafka did not take
//! whole is retried, never checkpointed past; a batch sent but not checkpointed is sent again and
//! answered `duplicate` from intake_seen (unless the process died between Kafka's acknowledgement
//! and the intake_seen write: then its posts are sent twice and the store collapses them by key);
//! the rejects file is cut back to its checkpointed length, so no rejection is listed twice.

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
    /// The file as it was: its size at the last checkpoint and a hash of its first 64 KiB.
    size: u64,
    head: String,
    /// Length of the rejects file at the last checkpoint.
    rejects_bytes: u64,
    /// Records read and answered (accepted, duplicate or rejected).
    records: u64,
    tally: Tally,
    /// Rejections by kind.
    rejected_kinds: BTreeMap<String, u64>,
    complete: bool,
}

/// A batch the ledger or Kafka could not take whole is tried again this many times, backing off,
/// before the import stops (its progress saved up to the batch before).
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
    let (size, head) = identity(&path)?;
    let mut progress = match (args.from_start, checkpoints.load(&channel, &stream)?) {
        (false, Some(saved)) => serde_json::from_str(&saved).context("reading the import's checkpoint")?,
        _ => Progress { file: path.clone(), size, head: head.clone(), ..Progress::default() },
    };
    if progress.head != head || size < progress.size {
        bail!(
            "{} is not the file an earlier import of {channel} read up to record {} (it changed); \
             --from-start reads it from its first record (what was imported comes back as duplicates)",
            path.display(),
            progress.records
        );
    }
    if progress.complete && size == progress.size {
        println!("{} was imported into {channel} already: {}", path.display(), summary(&progress));
        println!("(--from-start reads it again; what was imported comes back as duplicates)");
        return Ok(ExitCode::SUCCESS);
    }
    progress.complete = false; // a completed file that has grown: the new records are read
    let hasher = AuthorHasher::from_env()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let desk = Desk::from_config(&config, hasher).await?;
        let shutdown = crate::telemetry::shutdown_on_signals();
        let save = |p: &Progress| checkpoints.save(&channel, &stream, &serde_json::to_string(p).unwrap_or_default());
        let importer = Importer { desk: &desk, channel: &channel, batch: args.batch as usize, shutdown: &shutdown };
        let outcome = importer.import(&path, format, args.rejects.as_deref(), &mut progress, save).await;
        let flushed = desk.flush().await.context("writing the last intake_seen rows; run the same command again");
        print_summary(&path, &channel, &progress, args.rejects.as_deref());
        flushed?;
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
        let mut reader =
            RecordReader::new(BufReader::with_capacity(1 << 16, file), format, self.desk.max_record_bytes())
                .with_context(|| format!("{}", path.display()))?;
        let mut rejects = open_rejects(rejects, progress.rejects_bytes)?;
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
                progress.rejects_bytes += write_rejects(&mut rejects, &outcomes)?;
                record(progress, &outcomes, index);
                progress.size = progress.size.max(reader.position());
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
                progress.size = size;
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

    /// One batch through the desk, retried while the ledger is unreachable or Kafka does not take
    /// every record (what it took comes back as duplicates on the retry).
    async fn take(&self, batch: Vec<(usize, ingest::parse::intake::ReadRecord)>) -> Result<Vec<Outcome>> {
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            let why = match self.desk.take(self.channel.as_str(), batch.clone()).await {
                Ok(outcomes) if !outcomes.iter().any(|o| o.kind == Some("not_delivered")) => return Ok(outcomes),
                Ok(_) => "Kafka did not acknowledge every record of the batch".to_owned(),
                Err(e) => e.to_string(),
            };
            if attempt == ATTEMPTS || self.shutdown.is_cancelled() {
                bail!("{why}; stopped (run the same command to go on)");
            }
            tracing::warn!(why, attempt, "trying the batch again");
            tokio::time::sleep(wait).await;
            wait *= 2;
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

/// The rejects file, cut back to `keep` bytes (what the last checkpoint counted: 0 on a fresh run).
fn open_rejects(path: Option<&Path>, keep: u64) -> Result<Option<std::fs::File>> {
    path.map(|p| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("cannot write the rejects file {}", p.display()))?;
        file.set_len(keep).with_context(|| format!("cannot cut the rejects file {} back", p.display()))?;
        Ok(file)
    })
    .transpose()
}

/// Appends the batch's rejections (record number, id, reason, kind): the bytes written.
fn write_rejects(file: &mut Option<std::fs::File>, outcomes: &[Outcome]) -> Result<u64> {
    let Some(file) = file else { return Ok(0) };
    let mut out = Vec::new();
    for o in outcomes.iter().filter(|o| o.status == Status::Rejected) {
        serde_json::to_writer(&mut out, o)?;
        out.push(b'\n');
    }
    file.write_all(&out).context("writing the rejects file")?;
    file.sync_data().context("writing the rejects file")?;
    Ok(out.len() as u64)
}

/// The file's size and a hash of its first 64 KiB.
fn identity(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = Vec::with_capacity(1 << 16);
    (&mut file).take(1 << 16).read_to_end(&mut head).with_context(|| format!("reading {}", path.display()))?;
    Ok((size, hex::encode(&Sha256::digest(&head)[..12])))
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
        println!("  rejected records (record number from 0, id, reason): {}", r.display());
    }
}
