//! The `torch` backend (rust-bert over libtorch; cargo feature `torch`, run by `make test-torch`)
//! through the commands: `classify` and `eval` give the labels candle gives, and `train-head`
//! trains the same head on its embeddings.
#![cfg(feature = "torch")]

mod common;

use common::child::output_with_stdin;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shared(data: &str) -> PathBuf {
    let path = repo().join("../shared/data").join(data);
    assert!(path.exists(), "{} missing (the repo is expected beside shared/)", path.display());
    path
}

/// `citypulse` on the shipped config, run from `cwd`, without the caller's `CITYPULSE__*` settings.
fn citypulse(cwd: &Path) -> Command {
    let mut cmd = common::child::citypulse(&repo().join("config"), &[]);
    cmd.current_dir(cwd);
    cmd
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The texts of a labelled TSV, first `n` rows.
fn texts(tsv: &Path, n: usize) -> Vec<String> {
    analyze::labelled::read_tsv(tsv).unwrap().rows.into_iter().take(n).map(|r| r.text).collect()
}

fn classify(backend: &str, input: &[String]) -> Vec<Value> {
    let out = output_with_stdin(citypulse(repo()).args(["classify", "--backend", backend]), &(input.join("\n") + "\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), input.len(), "one line out per line in ({backend})");
    lines
}

fn topic_ids(line: &Value) -> Vec<&str> {
    line["topics"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect()
}

#[test]
fn classify_gives_candles_labels() {
    let mut input = texts(&shared("city_posts_dev.tsv"), usize::MAX);
    input.extend(texts(&shared("uit-vsfc/dev.tsv"), 300));
    let torch = classify("torch", &input);
    let candle = classify("candle", &input);
    let mut worst = 0f64;
    for (i, (t, c)) in torch.iter().zip(&candle).enumerate() {
        assert_eq!(t["sentiment"]["label"], c["sentiment"]["label"], "sentiment of line {i}: {}", input[i]);
        assert_eq!(topic_ids(t), topic_ids(c), "topics of line {i}: {}", input[i]);
        let (ts, cs) = (t["sentiment"]["score"].as_f64().unwrap(), c["sentiment"]["score"].as_f64().unwrap());
        worst = worst.max((ts - cs).abs());
    }
    assert!(worst < 1e-3, "sentiment scores differ by up to {worst}");
    eprintln!("torch vs candle: {} posts, same labels, scores within {worst:.2e}", input.len());
}

fn eval(backend: &str, data: &Path) -> Value {
    let out = run(citypulse(repo()).args(["eval", "--json", "--backend", backend, "--data"]).arg(data));
    serde_json::from_slice(&out).unwrap()
}

/// The same labels give the same figures, class by class.
#[test]
fn eval_on_torch_gives_candles_figures() {
    for data in ["uit-vsfc/dev.tsv", "city_posts_dev.tsv"] {
        let (torch, candle) = (eval("torch", &shared(data)), eval("candle", &shared(data)));
        for task in ["sentiment", "topic"] {
            for key in ["accuracy", "macro_f1", "per_class"] {
                assert_eq!(torch[task][key], candle[task][key], "{data}: {task}.{key}");
            }
        }
        assert!(torch["sentiment"]["accuracy"].as_f64().unwrap() > 0.8, "{data}: {torch}");
    }
}

/// Every number of a JSON value, in order.
fn numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(items) => items.iter().for_each(|i| numbers(i, out)),
        Value::Object(map) => map.values().for_each(|i| numbers(i, out)),
        _ => {}
    }
}

/// Trains a short sentiment head on `data` with `backend` in a folder of its own (its own embedding
/// cache, so the backend really embeds); returns (head.json, provenance.json).
fn train_head(backend: &str, data: &Path) -> (Value, Value) {
    let dir = std::env::temp_dir().join(format!("citypulse-torch-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(repo().join("models"), dir.join("models")).unwrap();
    let args = ["train-head", "--task", "sentiment", "--epochs", "5", "--hidden", "0", "--out", "head"];
    run(citypulse(&dir).args(args).args(["--backend", backend, "--data"]).arg(data));
    let read = |f: &str| serde_json::from_str(&std::fs::read_to_string(dir.join("head").join(f)).unwrap()).unwrap();
    let files = (read("head.json"), read("provenance.json"));
    std::fs::remove_dir_all(&dir).ok();
    files
}

#[test]
fn train_head_on_torch_trains_candles_head() {
    let dir = std::env::temp_dir().join(format!("citypulse-torch-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("train.tsv");
    let body = std::fs::read_to_string(shared("uit-vsfc/train.tsv")).unwrap();
    std::fs::write(&data, body.lines().take(401).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let (torch_head, torch_prov) = train_head("torch", &data);
    let (candle_head, candle_prov) = train_head("candle", &data);
    assert_eq!((torch_prov["backend"].as_str(), candle_prov["backend"].as_str()), (Some("torch"), Some("candle")));
    assert_eq!(torch_prov["held_out_scores"], candle_prov["held_out_scores"]);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    numbers(&torch_head, &mut a);
    numbers(&candle_head, &mut b);
    assert!(a.len() > 384 * 3 && a.len() == b.len(), "{} vs {} numbers", a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f64, f64::max);
    assert!(worst < 1e-3, "the heads differ by up to {worst}");
    std::fs::remove_dir_all(&dir).ok();
}
