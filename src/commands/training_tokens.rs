//! `citypulse training-tokens`: labelled TSV files as the encoder's token ids, one JSON line a row,
//! for the adapter trainer (scripts/train_adapter.py). The text goes through the classifier's own
//! path (normalise, redact, rewrite URLs and mentions, "query: " prefix, NFC, truncation), so the
//! adapter is trained on exactly what the encoder sees at run time; the trainer never re-implements
//! it. Rows are marked held out by the same rule as `train-head`, so neither trains on the tenth the
//! other reports on.

use super::train_head::{is_held_out, MEASURING_ONLY};
use crate::cli::{Cli, TrainingTokensArgs};
use analyze::classifier::prepare;
use analyze::labelled::read_tsv;
use analyze::tokenize::PostTokenizer;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &TrainingTokensArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    let analyze = &config.services.analyze;
    let tokenizer = PostTokenizer::load(&analyze.model_dir.join("tokenizer.json"), analyze.max_seq_tokens)?;
    let topics: Vec<String> = config.topics.ids().map(|t| t.to_string()).collect();
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut files = Vec::new();
    let mut lines = Vec::new();
    for (index, path) in args.data.iter().enumerate() {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        anyhow::ensure!(!MEASURING_ONLY.contains(&name.as_str()), "{} is for measuring only", path.display());
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let set = read_tsv(path)?;
        anyhow::ensure!(set.has_sentiment || set.has_topic, "{} has no sentiment or topic column", path.display());
        for (i, row) in set.rows.iter().enumerate() {
            if let Some(t) = &row.topic {
                anyhow::ensure!(topics.contains(t), "{}:{}: topic {t:?} is not configured", path.display(), i + 2);
            }
            let ids = tokenizer.encode(&prepare(&row.text))?;
            lines.push(serde_json::json!({
                "file": index,
                "ids": ids,
                "sentiment": row.sentiment.map(|s| s.as_str()),
                "topic": row.topic,
                "held_out": is_held_out(&row.text),
            }));
        }
        files.push(serde_json::json!({
            "path": path.display().to_string(),
            "sha256": hex::encode(Sha256::digest(&bytes)),
            "rows": set.rows.len(),
        }));
    }
    let header = serde_json::json!({
        "files": files,
        "topics": topics,
        "max_seq_tokens": analyze.max_seq_tokens,
        "pad_id": tokenizer.pad_id(),
    });
    writeln!(out, "{header}")?;
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!("training-tokens: {} rows from {} files -> {}", lines.len(), files.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}
