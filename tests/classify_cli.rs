//! `citypulse classify` and `citypulse eval` end to end on the shipped model and heads: one JSON line
//! out per line in, in order, with the documented keys; eval's JSON has the documented shape.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn model_ready() -> bool {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = root.join("models/multilingual-e5-small/model.safetensors").exists()
        && root.join("models/heads/sentiment/head.json").exists();
    if !ok {
        assert!(std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(), "model or heads missing");
        eprintln!("skipped: model not fetched (scripts/fetch-model.sh)");
    }
    ok
}

fn citypulse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citypulse"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn classify_writes_one_line_per_input_line_in_order() {
    if !model_ready() {
        return;
    }
    let input = [
        "Đường Nguyễn Hữu Cảnh lại ngập nặng sau cơn mưa, xe chết máy la liệt",
        r#"{"id":"42","source":"replay","text":"Gọi 0903 123 456 để báo kẹt xe ở Quận 1"}"#,
        "",
        "The new metro line is clean, fast and always on time. Love it!",
        "cup dien ca ngay o Go Vap, nong chiu khong noi",
    ];
    let mut child = citypulse()
        .args(["classify", "--backend", "candle"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all((input.join("\n") + "\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), input.len());
    for line in &lines {
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{line}");
        for key in ["text_redacted", "lang", "sentiment", "topics", "model"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        let s = &line["sentiment"];
        let p = &s["probabilities"];
        let score = s["score"].as_f64().unwrap();
        let expected = p["positive"].as_f64().unwrap() - p["negative"].as_f64().unwrap();
        assert!((score - expected).abs() < 1e-5 && (-1.0..=1.0).contains(&score));
        assert!(!line["topics"].as_array().unwrap().is_empty());
    }
    assert!(lines[0]["text_redacted"].as_str().unwrap().contains("Nguyễn Hữu Cảnh"));
    let redacted = lines[1]["text_redacted"].as_str().unwrap();
    assert!(!redacted.contains("0903") && redacted.contains("kẹt xe"), "{redacted}");
    assert_eq!(lines[3]["lang"], "en");
    assert_eq!(lines[4]["lang"], "vi");
    assert_eq!(lines[0]["sentiment"]["label"], "negative");
    assert_eq!(lines[3]["sentiment"]["label"], "positive");
}

#[test]
fn eval_json_has_the_documented_shape() {
    if !model_ready() {
        return;
    }
    let dir = std::env::temp_dir().join(common::unique_name("eval"));
    std::fs::create_dir_all(&dir).unwrap();
    let tsv = dir.join("tiny.tsv");
    std::fs::write(
        &tsv,
        "text\ttopic\tsentiment\n\
         Kẹt xe kinh khủng ở vòng xoay Hàng Xanh sáng nay\ttraffic\tnegative\n\
         Cảm ơn phường đã lắp thêm đèn đường, đi đêm an toàn hơn hẳn\tutilities\tpositive\n\
         Từ tuần sau xe buýt số 19 đổi lộ trình qua đường Cộng Hòa\ttraffic\tneutral\n",
    )
    .unwrap();
    let out = citypulse().args(["eval", "--json", "--backend", "candle", "--data"]).arg(&tsv).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 3);
    assert!(v["posts_per_second"].as_f64().unwrap() > 0.0);
    for key in ["accuracy", "macro_f1", "polarity_accuracy", "per_class"] {
        assert!(v["sentiment"].get(key).is_some(), "sentiment.{key}");
    }
    for key in ["accuracy", "macro_f1", "other_rate", "per_class"] {
        assert!(v["topic"].get(key).is_some(), "topic.{key}");
    }
    std::fs::remove_dir_all(dir).ok();
}
