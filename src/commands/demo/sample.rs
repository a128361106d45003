//! The demo's sample (`demo.replay_file`): read, shifted so its last post is "now" (the dashboard
//! then shows today), and written under `demo.work_dir` for the replay source.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// The shifted copy and what it holds.
pub struct Sample {
    pub path: PathBuf,
    pub posts: Vec<schema::Post>,
    /// How far every time was moved.
    pub shift: chrono::Duration,
}

/// Reads `source`, moves every time by the same amount so the newest post is `now` minus a minute,
/// and writes the result to `work_dir/posts.jsonl`.
pub fn shifted(source: &Path, work_dir: &Path, limits: &schema::Limits, now: DateTime<Utc>) -> Result<Sample> {
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading the demo sample {}", source.display()))?;
    let mut posts = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let post: schema::Post =
            schema::decode(line.as_bytes(), limits).with_context(|| format!("{} line {}", source.display(), i + 1))?;
        posts.push(post);
    }
    let newest = posts.iter().map(|p| p.created_at).max().context("the demo sample is empty")?;
    let shift = (now - chrono::Duration::minutes(1)) - newest;
    let mut out = String::new();
    for p in &mut posts {
        p.created_at += shift;
        p.fetched_at += shift;
        out.push_str(std::str::from_utf8(&schema::encode(p)).unwrap_or_default());
        out.push('\n');
    }
    std::fs::create_dir_all(work_dir)?;
    let path = work_dir.join("posts.jsonl");
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(Sample { path, posts, shift })
}
