//! `citypulse train-head`: trains the sentiment or topic head on labelled TSV files and writes it
//! with its provenance (data files and sizes, options, held-out scores).
//!
//! A stable tenth of every file (by a hash of its text) is held out: never trained on, used to fit
//! the temperature and to report scores, and written to `.local/dev-splits/` so `eval` can re-check.

use super::model::{options, Progress};
use crate::cli::{Cli, TaskArg, TrainHeadArgs};
use analyze::cache::EmbeddingCache;
use analyze::classifier::{embed_cached, load_encoder};
use analyze::heads::train::{fit_temperature, train_head, TrainOptions};
use analyze::labelled::{read_tsv, LabelledRow};
use analyze::metrics::report;
use anyhow::{Context, Result};
use schema::SentimentLabel;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Files that are for measuring only and must never be trained on.
pub(super) const MEASURING_ONLY: &[&str] = &["city_posts_dev.tsv"];
const DEV_SPLIT_DIR: &str = ".local/dev-splits";
const CACHE_DIR: &str = ".local/cache/embeddings";

struct Example {
    file: usize,
    text: String,
    label: String,
    dev: bool,
    /// An analyst's correction (`citypulse labels export`).
    correction_id: Option<String>,
}

pub fn run(cli: &Cli, args: &TrainHeadArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let labels: Vec<String> = match args.task {
        TaskArg::Sentiment => SentimentLabel::ALL.iter().map(|l| l.as_str().to_owned()).collect(),
        TaskArg::Topic => config.topics.ids().map(|t| t.to_string()).collect(),
    };
    let (examples, files) = read_examples(&args.data, args.task, &labels)?;
    let opts = options(&config, &args.model)?;
    let mut encoder = load_encoder(&opts)?;
    let mut cache = EmbeddingCache::open(Path::new(CACHE_DIR), &opts.encoder_id()).ok();
    eprintln!("train-head: embedding {} texts ({} cached)", examples.len(), cache.as_ref().map_or(0, |c| c.len()));
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let mut progress = Progress::new("embed", texts.len());
    let embeddings = embed_cached(&mut encoder, cache.as_mut(), &texts, &mut |d| progress.update(d))?;

    let label_index = |l: &str| labels.iter().position(|x| x == l).unwrap_or(0);
    let (train_x, train_y, dev_x, dev_y) = split(&examples, &embeddings, label_index);
    let center = mean(&train_x);
    let train_opts = TrainOptions {
        seed: args.seed,
        epochs: args.epochs,
        hidden: args.hidden,
        class_weight_power: args.class_weight_power,
        ..match args.task {
            TaskArg::Sentiment => TrainOptions::default(),
            TaskArg::Topic => TrainOptions::single_head(),
        }
    };
    eprintln!("train-head: {} train rows, {} held out; {:?}", train_x.len(), dev_x.len(), train_opts);
    let mut head = train_head(
        &train_x,
        &train_y,
        labels.clone(),
        center,
        opts.encoder_id(),
        &train_opts,
        &mut |member, epoch, loss| {
            if epoch % 5 == 0 || epoch == train_opts.epochs {
                eprintln!(
                    "train-head: member {member}/{} epoch {epoch}/{} loss {loss:.4}",
                    train_opts.ensemble, train_opts.epochs
                );
            }
        },
    )?;
    head.temperature = fit_temperature(&head, &dev_x, &dev_y);

    let scores = dev_scores(&head, &examples, &embeddings, &files, &labels);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    head.save(&args.out.join("head.json"))?;
    let provenance = serde_json::json!({
        "task": format!("{:?}", args.task).to_lowercase(),
        "created_at": chrono::Utc::now().to_rfc3339(),
        "encoder": opts.encoder_id(),
        "backend": encoder.backend_name(),
        "labels": labels,
        "options": format!("{train_opts:?}"),
        "temperature": head.temperature,
        "data": files.iter().enumerate().map(|(i, f)| data_entry(i, f, &examples)).collect::<Vec<_>>(),
        "held_out_scores": scores,
        "held_out_rule": "rows whose SHA-256(text) first byte % 10 == 0, per file",
    });
    std::fs::write(args.out.join("provenance.json"), serde_json::to_string_pretty(&provenance)?)?;
    write_dev_splits(&examples, &files, args.task)?;
    println!("{}", serde_json::to_string_pretty(&scores)?);
    println!("wrote {} and provenance.json", args.out.join("head.json").display());
    Ok(ExitCode::SUCCESS)
}

/// A data file in the provenance; a file of analysts' corrections also names each one, trained
/// on or held out, so a head can be traced to the corrections behind it (and retrained without
/// one that is revoked).
fn data_entry(index: usize, f: &FileInfo, examples: &[Example]) -> serde_json::Value {
    let mut entry = serde_json::json!({"path": f.path, "sha256": f.sha256, "rows": f.rows,
        "train_rows": f.train_rows, "held_out_rows": f.dev_rows});
    let ids = |dev: bool| -> Vec<&str> {
        examples.iter().filter(|e| e.file == index && e.dev == dev).filter_map(|e| e.correction_id.as_deref()).collect()
    };
    let (trained, held_out) = (ids(false), ids(true));
    if !trained.is_empty() || !held_out.is_empty() {
        entry["corrections"] = serde_json::json!({"trained": trained, "held_out": held_out});
    }
    entry
}

struct FileInfo {
    path: String,
    sha256: String,
    rows: usize,
    train_rows: usize,
    dev_rows: usize,
}

pub(super) fn is_held_out(text: &str) -> bool {
    Sha256::digest(text.as_bytes())[0] % 10 == 0
}

fn read_examples(paths: &[PathBuf], task: TaskArg, labels: &[String]) -> Result<(Vec<Example>, Vec<FileInfo>)> {
    let mut examples = Vec::new();
    let mut files = Vec::new();
    for (file, path) in paths.iter().enumerate() {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        anyhow::ensure!(
            !MEASURING_ONLY.contains(&name.as_str()),
            "{} is for measuring only; never train on it",
            path.display()
        );
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let set = read_tsv(path)?;
        let before = examples.len();
        for (i, row) in set.rows.iter().enumerate() {
            let Some(label) = label_of(row, task) else { continue };
            anyhow::ensure!(
                labels.contains(&label),
                "{}:{}: label {label:?} is not one of {labels:?}",
                path.display(),
                i + 2
            );
            examples.push(Example {
                file,
                dev: is_held_out(&row.text),
                text: row.text.clone(),
                label,
                correction_id: row.correction_id.clone(),
            });
        }
        let mine = &examples[before..];
        let dev_rows = mine.iter().filter(|e| e.dev).count();
        anyhow::ensure!(!mine.is_empty(), "{} has no {task:?} labels", path.display());
        files.push(FileInfo {
            path: path.display().to_string(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            rows: mine.len(),
            train_rows: mine.len() - dev_rows,
            dev_rows,
        });
    }
    Ok((examples, files))
}

fn label_of(row: &LabelledRow, task: TaskArg) -> Option<String> {
    match task {
        TaskArg::Sentiment => row.sentiment.map(|s| s.as_str().to_owned()),
        TaskArg::Topic => row.topic.clone(),
    }
}

type Split = (Vec<Vec<f32>>, Vec<usize>, Vec<Vec<f32>>, Vec<usize>);

fn split(examples: &[Example], embeddings: &[Vec<f32>], index: impl Fn(&str) -> usize) -> Split {
    let (mut tx, mut ty, mut dx, mut dy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (e, emb) in examples.iter().zip(embeddings) {
        if e.dev {
            dx.push(emb.clone());
            dy.push(index(&e.label));
        } else {
            tx.push(emb.clone());
            ty.push(index(&e.label));
        }
    }
    (tx, ty, dx, dy)
}

fn mean(rows: &[Vec<f32>]) -> Vec<f32> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut m = vec![0f32; dim];
    for r in rows {
        m.iter_mut().zip(r).for_each(|(a, v)| *a += v);
    }
    m.iter_mut().for_each(|a| *a /= rows.len().max(1) as f32);
    m
}

fn dev_scores(
    head: &analyze::heads::mlp::MlpHead,
    examples: &[Example],
    embeddings: &[Vec<f32>],
    files: &[FileInfo],
    labels: &[String],
) -> serde_json::Value {
    let mut per_file = serde_json::Map::new();
    let mut all = Vec::new();
    for (f, info) in files.iter().enumerate() {
        let pairs: Vec<(String, String)> = examples
            .iter()
            .zip(embeddings)
            .filter(|(e, _)| e.dev && e.file == f)
            .map(|(e, emb)| {
                let p = head.probabilities(emb);
                let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |m| m.0);
                (e.label.clone(), labels[best].clone())
            })
            .collect();
        let r = report(&pairs, labels);
        per_file.insert(
            info.path.clone(),
            serde_json::json!({"rows": r.rows, "accuracy": r.accuracy, "macro_f1": r.macro_f1}),
        );
        all.extend(pairs);
    }
    let r = report(&all, labels);
    serde_json::json!({"all": {"rows": r.rows, "accuracy": r.accuracy, "macro_f1": r.macro_f1}, "per_file": per_file})
}

fn write_dev_splits(examples: &[Example], files: &[FileInfo], task: TaskArg) -> Result<()> {
    std::fs::create_dir_all(DEV_SPLIT_DIR)?;
    let column = match task {
        TaskArg::Sentiment => "sentiment",
        TaskArg::Topic => "topic",
    };
    for (f, info) in files.iter().enumerate() {
        let stem = Path::new(&info.path).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let parent = Path::new(&info.path)
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut out = format!("text\t{column}\n");
        for e in examples.iter().filter(|e| e.dev && e.file == f) {
            out += &format!("{}\t{}\n", e.text, e.label);
        }
        std::fs::write(Path::new(DEV_SPLIT_DIR).join(format!("{parent}-{stem}.{column}.heldout.tsv")), out)?;
    }
    Ok(())
}
