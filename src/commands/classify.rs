//! `citypulse classify`: text lines or Post JSON lines in (stdin or --input), exactly one JSON line
//! out per line in, in order.

use super::model::{options, Progress};
use crate::cli::{ClassifyArgs, Cli};
use analyze::Classifier;
use anyhow::{Context, Result};
use std::io::{BufRead, Write};
use std::process::ExitCode;

/// Lines classified per batch: large enough for length-sorted batching, small enough to stream.
const CHUNK_LINES: usize = 512;

pub fn run(cli: &Cli, args: &ClassifyArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let opts = options(&config, &args.model)?;
    let mut classifier = Classifier::load(&opts, &config.topics).context("loading the classifier")?;
    tracing::info!(backend = %classifier.backend_name(), model = %classifier.model().version, "classifier ready");
    // A file is read once (its line count drives the progress line); stdin streams.
    let (input, total): (Box<dyn BufRead>, usize) = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let total = text.lines().count();
            (Box::new(std::io::Cursor::new(text)), total)
        }
        None => (Box::new(std::io::stdin().lock()), 0),
    };
    let mut progress = Progress::new("classify", total);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut lines = input.lines();
    let mut done = 0;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_LINES);
        for line in lines.by_ref().take(CHUNK_LINES) {
            chunk.push(line.context("reading input")?);
        }
        if chunk.is_empty() {
            break;
        }
        let texts: Vec<String> = chunk.iter().map(|l| text_of_line(l)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let results = classifier.classify(&refs, &mut |_| {})?;
        for r in results {
            let line = serde_json::json!({
                "text_redacted": r.text_redacted,
                "lang": r.lang,
                "sentiment": r.sentiment,
                "topics": r.topics,
                "model": classifier.model(),
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        done += chunk.len();
        progress.update(done);
    }
    Ok(ExitCode::SUCCESS)
}

/// A Post JSON line gives its `text`; anything else is the text itself.
fn text_of_line(line: &str) -> String {
    if line.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(serde_json::Value::String(text)) = obj.get("text") {
                return text.clone();
            }
        }
    }
    line.to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn post_lines_give_their_text_and_other_lines_are_text() {
        assert_eq!(super::text_of_line(r#"{"id":"1","text":"Kẹt xe"}"#), "Kẹt xe");
        assert_eq!(super::text_of_line("{not json"), "{not json");
        assert_eq!(super::text_of_line("ngập quá"), "ngập quá");
    }
}
