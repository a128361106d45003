//! `citypulse labels list | revoke ID | export --task T --out FILE`: the analysts' corrections of
//! the classifier (store/src/corrections.rs) from the terminal, and as training data.
//!
//! The export is the labelled TSV that `eval` and `train-head` read (analyze/src/labelled.rs):
//! `text` and the task's column, then where each row came from (`correction_id`, `post_key`,
//! `corrected_by`, `corrected_at`, `model_version`, `old_label`), which `train-head` copies into
//! the head's provenance.

use super::store_cmds::open_migrated;
use crate::cli::{Cli, LabelsAction, TaskArg};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;
use store::corrections::{self, Correction, Field};

pub fn run(cli: &Cli, action: &LabelsAction) -> Result<ExitCode> {
    let (_, client, db, _, rt) = open_migrated(cli)?;
    match action {
        LabelsAction::List { revoked } => {
            let all = rt.block_on(corrections::list(&client, &db, *revoked))?;
            if all.is_empty() {
                println!(
                    "no corrections yet (an analyst marks a wrong label on the dashboard, or POST /api/v1/corrections)"
                );
            }
            for c in &all {
                let state = if c.revoked {
                    format!("  REVOKED by {}", c.revoked_by.as_deref().unwrap_or("?"))
                } else {
                    String::new()
                };
                println!(
                    "{}  {}  {:<9} {} -> {}  by {} {}{state}",
                    c.id,
                    c.post_key,
                    c.field.as_str(),
                    c.old_label,
                    c.new_label,
                    c.corrected_by,
                    c.corrected_at.format("%F %H:%M")
                );
                println!("    {}", one_line(&c.text_redacted).chars().take(110).collect::<String>());
            }
        }
        LabelsAction::Revoke { id, by } => {
            let by = by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into());
            match rt.block_on(corrections::revoke(&client, &db, id, &by, chrono::Utc::now()))? {
                Some(c) => println!(
                    "revoked {} ({} of {}: {} -> {})",
                    c.id,
                    c.field.as_str(),
                    c.post_key,
                    c.old_label,
                    c.new_label
                ),
                None => anyhow::bail!("no live correction {id:?} (see `citypulse labels list`)"),
            }
        }
        LabelsAction::Export { task, out } => {
            let field = match task {
                TaskArg::Sentiment => Field::Sentiment,
                TaskArg::Topic => Field::Topic,
            };
            let all = rt.block_on(corrections::list(&client, &db, false))?;
            let rows: Vec<&Correction> = all.iter().filter(|c| c.field == field).collect();
            write_tsv(out, field, &rows)?;
            println!("wrote {} {} corrections to {}", rows.len(), field.as_str(), out.display());
            if rows.is_empty() {
                eprintln!("labels: no live {} corrections: the file has only its header, and train-head refuses a file without labels", field.as_str());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Tabs and line breaks would break the TSV; the classifier reads any whitespace as one space.
fn one_line(text: &str) -> String {
    text.split(['\t', '\n', '\r']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

fn write_tsv(out: &Path, field: Field, rows: &[&Correction]) -> Result<()> {
    let mut tsv = format!(
        "text\t{}\tcorrection_id\tpost_key\tcorrected_by\tcorrected_at\tmodel_version\told_label\n",
        field.as_str()
    );
    for c in rows {
        let cells = [
            one_line(&c.text_redacted),
            c.new_label.clone(),
            c.id.clone(),
            one_line(&c.post_key),
            one_line(&c.corrected_by),
            c.corrected_at.to_rfc3339(),
            one_line(&c.model_version),
            c.old_label.clone(),
        ];
        tsv.push_str(&cells.join("\t"));
        tsv.push('\n');
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, tsv).with_context(|| format!("writing {}", out.display()))
}
