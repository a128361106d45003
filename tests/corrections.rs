//! Analysts' corrections of the classifier, end to end on a real `citypulse serve` and ClickHouse:
//! the API (analyst role, errors naming the field, one live correction per post and field,
//! revocation), `citypulse labels list | export | revoke`, and `train-head` naming the corrections
//! in its provenance. Then the point of it all (issue #26): posts of one kind the shipped model
//! gets wrong — praise in Southern slang whose words look like complaints ("hết sẩy", "hết nước
//! chấm", "đã gì đâu") — are stored with the model's labels and corrected through the API; the
//! corrections are exported and split 70/30; the sentiment head retrained with the 70 (and the
//! shipped recipe's data) must gain at least 10 points on the 30 and lose at most 1 point on
//! uit-vsfc dev and on the AIVIVN held-out tenth, measured by `citypulse eval --compare-heads`.

mod common;

use common::serve::{get, scripted, send, Server, ANALYST_TOKEN, TOKEN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model_ready() -> bool {
    let ok = repo().join("models/multilingual-e5-small-tuned/model.onnx").exists()
        && repo().join("models/heads/tuned/sentiment/head.json").exists();
    if !ok {
        assert!(std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(), "model or heads missing");
        eprintln!("skipped: model not fetched (scripts/fetch-model.sh)");
    }
    ok
}

fn correct(server: &Server, token: &str, body: Value) -> (u16, Value) {
    send(server, reqwest::Method::POST, "/api/v1/corrections", token, Some(body))
}

/// `citypulse ARGS` against the server's configuration and database; stdout, or a panic with
/// stderr.
fn citypulse(server: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .arg("--config")
        .arg(server.config_dir())
        .args(args)
        .current_dir(repo())
        .env("CITYPULSE__CLICKHOUSE__URL", &server.url)
        .env("CITYPULSE__CLICKHOUSE__DATABASE", &server.db)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "citypulse {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn analysts_correct_labels_revoke_them_and_export_them_for_training() {
    let Some(url) = common::clickhouse_url() else { return };
    let server = Server::start(&url, scripted(), true);
    // Who may write: the dashboard shows the forms by this.
    let (_, me) = get(&server.base, "/api/v1/me", Some(TOKEN));
    assert_eq!(me, json!({"name": "comms_office", "role": "viewer", "can_write": false}));
    let (_, me) = get(&server.base, "/api/v1/me", Some(ANALYST_TOKEN));
    assert_eq!(me, json!({"name": "analyst_lan", "role": "analyst", "can_write": true}));
    // f0..f6 are flooding posts labelled negative, f7..f9 positive (tests/common/serve.rs).
    let (status, body) = correct(&server, TOKEN, json!({"post": "mastodon_social:f7", "sentiment": "negative"}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "a viewer: {body}");
    for (bad, param) in [
        (json!({"post": "mastodon_social:f7"}), "body"),
        (json!({"post": "mastodon_social:f7", "sentiment": "negative", "topic": "traffic"}), "body"),
        (json!({"post": "mastodon_social:f7", "sentiment": "angry"}), "sentiment"),
        (json!({"post": "mastodon_social:f7", "topic": "weather"}), "topic"),
        (json!({"post": "mastodon_social:f7", "sentiment": "positive"}), "sentiment"),
        (json!({"post": "mastodon_social:f7", "sentiment": "negative", "why": "x"}), "body"),
    ] {
        let (status, body) = correct(&server, ANALYST_TOKEN, bad.clone());
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some(param)), "{bad}: {body}");
    }
    let (status, body) =
        correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:nope", "sentiment": "neutral"}));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_post")), "{body}");

    let (status, body) = correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:f7", "sentiment": "neutral"}));
    assert_eq!(status, 201, "{body}");
    let c = &body["correction"];
    assert_eq!(
        (c["field"].as_str(), c["old_label"].as_str(), c["new_label"].as_str(), c["corrected_by"].as_str()),
        (Some("sentiment"), Some("positive"), Some("neutral"), Some("analyst_lan"))
    );
    assert_eq!(c["model_version"].as_str(), Some("v1"));
    assert_eq!(c["text_redacted"].as_str(), Some("Mưa lớn ở Quận 7, bài 7"));
    let f7 = c["id"].as_str().unwrap().to_owned();
    // Correcting the same post and field again replaces it; the topic is a correction of its own.
    let (status, body) =
        correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:f7", "sentiment": "negative"}));
    assert_eq!((status, body["correction"]["id"].as_str()), (201, Some(f7.as_str())), "{body}");
    let (status, _) = correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:f8", "topic": "weather_events"}));
    assert_eq!(status, 400, "not a configured topic");
    let (status, body) =
        correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:t1", "topic": "urban_planning"}));
    assert_eq!((status, body["correction"]["old_label"].as_str()), (201, Some("traffic")), "{body}");
    let (status, body) =
        correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:f8", "sentiment": "negative"}));
    assert_eq!(status, 201, "{body}");
    let f8 = body["correction"]["id"].as_str().unwrap().to_owned();

    // Listed (any role may read them), newest first.
    let (status, body) = get(&server.base, "/api/v1/corrections", Some(TOKEN));
    assert_eq!((status, body["total"].as_u64()), (200, Some(3)), "{body}");
    let listed = body["corrections"].as_array().unwrap();
    let f7_row = listed.iter().find(|c| c["id"] == f7.as_str()).unwrap();
    assert_eq!(f7_row["new_label"].as_str(), Some("negative"), "the later correction replaced the first");

    // Revoked: gone from the list and the export, kept with who revoked it.
    let revoke =
        |token, id: &str| send(&server, reqwest::Method::DELETE, &format!("/api/v1/corrections/{id}"), token, None);
    assert_eq!(revoke(TOKEN, &f8).0, 403);
    assert_eq!(revoke(ANALYST_TOKEN, &f8).0, 204);
    assert_eq!(revoke(ANALYST_TOKEN, &f8).0, 404, "already revoked");
    let (_, body) = get(&server.base, "/api/v1/corrections", Some(TOKEN));
    assert_eq!(body["total"].as_u64(), Some(2), "{body}");
    let (_, body) = get(&server.base, "/api/v1/corrections?revoked=include", Some(TOKEN));
    let all = body["corrections"].as_array().unwrap();
    assert_eq!(all[0]["id"].as_str(), Some(f8.as_str()), "the latest change first: {body}");
    let gone = &all[0];
    assert_eq!((gone["revoked"].as_bool(), gone["revoked_by"].as_str()), (Some(true), Some("analyst_lan")), "{gone}");
    assert_eq!(gone["text_redacted"].as_str(), Some(""), "a revoked correction keeps no text");
    // Corrected again at once (the same second as the revocation): live again, not lost under it.
    let (status, _) = correct(&server, ANALYST_TOKEN, json!({"post": "mastodon_social:f8", "sentiment": "neutral"}));
    assert_eq!(status, 201);
    let (_, body) = get(&server.base, "/api/v1/corrections", Some(TOKEN));
    assert_eq!(body["total"].as_u64(), Some(3), "{body}");
    assert_eq!(revoke(ANALYST_TOKEN, &f8).0, 204, "and revocable again");

    // The CLI: list, export as labelled TSV with provenance columns, revoke.
    let listing = citypulse(&server, &["labels", "list"]);
    assert!(listing.contains(&f7) && listing.contains("positive -> negative") && !listing.contains(&f8), "{listing}");
    let dir = temp_dir("corrections_export");
    let tsv = dir.join("sentiment.tsv");
    let said = citypulse(&server, &["labels", "export", "--task", "sentiment", "--out", tsv.to_str().unwrap()]);
    assert!(said.contains("wrote 1 sentiment corrections"), "{said}");
    let text = std::fs::read_to_string(&tsv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "text\tsentiment\tcorrection_id\tpost_key\tcorrected_by\tcorrected_at\tmodel_version\told_label"
    );
    assert!(
        lines[1].starts_with(&format!("Mưa lớn ở Quận 7, bài 7\tnegative\t{f7}\tmastodon_social:f7\tanalyst_lan\t"))
    );
    assert_eq!(lines.len(), 2, "{text}");
    let topics = dir.join("topic.tsv");
    citypulse(&server, &["labels", "export", "--task", "topic", "--out", topics.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&topics).unwrap().contains("Kẹt xe ở Quận 1\turban_planning\t"));
    let said = citypulse(&server, &["labels", "revoke", &f7, "--by", "lan"]);
    assert!(said.starts_with(&format!("revoked {f7}")), "{said}");
    let (_, body) = get(&server.base, "/api/v1/corrections", Some(TOKEN));
    assert_eq!(body["total"].as_u64(), Some(1), "{body}");

    // train-head names the corrections it trained on (a short run: what is checked is the record).
    if model_ready() {
        let out = dir.join("heads/sentiment");
        let training = repo().join("models/heads/training/city_posts_train.tsv");
        let args = ["train-head", "--task", "sentiment", "--epochs", "1", "--hidden", "0", "--out"];
        let mut cmd = [args.to_vec(), vec![out.to_str().unwrap()]].concat();
        cmd.extend(["--data", training.to_str().unwrap(), "--data", tsv.to_str().unwrap()]);
        citypulse(&server, &cmd);
        let provenance: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("provenance.json")).unwrap()).unwrap();
        let data = provenance["data"].as_array().unwrap();
        assert!(data[0].get("corrections").is_none(), "the city file has no corrections: {provenance}");
        let named = &data[1]["corrections"];
        let all: Vec<&str> = ["trained", "held_out"]
            .iter()
            .flat_map(|k| named[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap()))
            .collect();
        assert_eq!(all, [f7.as_str()], "{provenance}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Posts praising the city in Southern slang whose words read like complaints: "hết" (out of,
/// as in "hết nước", no water) in "hết sẩy", "hết nước chấm", "hết chỗ chê" (all: superb),
/// "đã gì đâu" (so good), "chất như nước cất" (top quality). Written for this test; none is from
/// city_posts_dev.tsv or the training files.
fn slang_praise() -> Vec<String> {
    let subjects = [
        "Tuyến metro số 1",
        "Công viên bờ sông Sài Gòn",
        "Cầu Thủ Thiêm 2",
        "Đường Nguyễn Huệ",
        "Dịch vụ công trực tuyến của quận",
        "Xe buýt số 56",
        "Phố đi bộ Bùi Viện",
        "Bến phà Bình Khánh",
        "Thư viện Khoa học Tổng hợp",
        "Hầm Thủ Thiêm",
        "Chợ Bến Thành",
        "Cổng dịch vụ công thành phố",
        "Trạm y tế phường",
        "Đường Võ Văn Kiệt",
        "Bệnh viện quận 7",
        "Ứng dụng đặt vé buýt",
        "Nhà văn hóa thanh niên",
        "Sân bóng quận 4",
        "Khu vui chơi Đầm Sen",
        "Bãi xe Lê Lai",
        "Bờ kè kênh Nhiêu Lộc",
        "Trung tâm hành chính quận 3",
        "Đường hoa Tết",
        "Xe buýt điện VinBus",
    ];
    let idioms = [
        "đẹp hết nước chấm",
        "sạch hết sẩy",
        "xịn hết chỗ chê",
        "nhanh hết ý luôn",
        "đỉnh của chóp luôn á",
        "mát rượi, đã gì đâu",
        "chất như nước cất",
        "hết sẩy con bà bảy",
        "quá đã luôn mọi người ơi",
        "ngon lành cành đào",
    ];
    let tails = [
        "",
        "Ai chưa đi thì đi liền nha.",
        "Cuối tuần này rủ cả nhà đi.",
        "Tui đi hoài không chán.",
        "Ghiền luôn rồi.",
    ];
    let mut out = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for k in 0..6 {
            let idiom = idioms[(i * 7 + k * 3) % idioms.len()];
            let tail = tails[(i + k) % tails.len()];
            out.push(format!("{s} giờ {idiom}. {tail}").trim().to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The model's labels for `texts` (`citypulse classify`, the shipped model).
fn classify(texts: &[String]) -> Vec<Value> {
    let dir = temp_dir("corrections_classify");
    let input = dir.join("in.txt");
    std::fs::write(&input, texts.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(["classify", "--input", input.to_str().unwrap()])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// An analysed post as the analyzer would have stored it, with the model's labels.
fn stored_post(i: usize, text: &str, analysis: &Value) -> schema::AnalyzedPost {
    let at = chrono::Utc::now() - chrono::Duration::hours(2) + chrono::Duration::seconds(i as i64);
    let p = &analysis["sentiment"]["probabilities"];
    let probabilities = schema::SentimentProbabilities {
        negative: p["negative"].as_f64().unwrap() as f32,
        neutral: p["neutral"].as_f64().unwrap() as f32,
        positive: p["positive"].as_f64().unwrap() as f32,
    };
    let topics = analysis["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| schema::TopicScore {
            id: schema::TopicId::new(t["id"].as_str().unwrap()).unwrap(),
            score: t["score"].as_f64().unwrap() as f32,
        })
        .collect();
    schema::AnalyzedPost {
        id: format!("slang{i}"),
        source: schema::SourceId::new("mastodon_social").unwrap(),
        url: None,
        author: "b".repeat(32),
        lang_declared: Some("vi".into()),
        created_at: at,
        fetched_at: at,
        places: vec![],
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: text.to_owned(),
        lang: schema::Lang::Vi,
        sentiment: schema::Sentiment::from_probabilities(probabilities),
        topics,
        model: serde_json::from_value(analysis["model"].clone()).unwrap(),
        analyzed_at: at,
        embedding: None,
        search: None,
    }
}

/// `eval --compare-heads`: (before, after) sentiment accuracy on `data`, and (before, after)
/// polarity accuracy (gold negative or positive rows, the more probable of the two).
fn accuracy_before_after(data: &Path, heads: &Path) -> ((f64, f64), (f64, f64)) {
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(["eval", "--json", "--data", data.to_str().unwrap(), "--compare-heads", heads.to_str().unwrap()])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acc = |k: &str, m: &str| v[k]["sentiment"][m].as_f64().unwrap();
    (
        (acc("before", "accuracy"), acc("after", "accuracy")),
        (acc("before", "polarity_accuracy"), acc("after", "polarity_accuracy")),
    )
}

#[test]
fn retraining_on_corrections_fixes_their_kind_and_keeps_the_rest() {
    let Some(url) = common::clickhouse_url() else { return };
    if !model_ready() {
        return;
    }
    // What the shipped model says; the posts it gets wrong are what an analyst corrects.
    let texts = slang_praise();
    let analyses = classify(&texts);
    let posts: Vec<schema::AnalyzedPost> =
        texts.iter().zip(&analyses).enumerate().map(|(i, (t, a))| stored_post(i, t, a)).collect();
    let wrong: Vec<&schema::AnalyzedPost> =
        posts.iter().filter(|p| p.sentiment.label != schema::SentimentLabel::Positive).collect();
    eprintln!("the shipped model gets {} of {} slang-praise posts wrong", wrong.len(), texts.len());
    assert!(
        wrong.len() >= 30,
        "the premise: the model gets this kind wrong ({} of {} wrong)",
        wrong.len(),
        texts.len()
    );
    let wrong_keys: Vec<String> = wrong.iter().map(|p| p.key()).collect();
    let server = Server::start(&url, posts.clone(), true);
    for key in &wrong_keys {
        let (status, body) = correct(&server, ANALYST_TOKEN, json!({"post": key, "sentiment": "positive"}));
        assert_eq!(status, 201, "{body}");
    }

    // Exported, then split 70/30 by a stable hash of the post's subject (the words before "giờ"):
    // the 30 share the kind of praise with the 70, not a place or service, so a retrained head
    // must carry the idioms over to subjects it was not corrected on.
    let dir = temp_dir("corrections_retrain");
    let export = dir.join("corrections.tsv");
    citypulse(&server, &["labels", "export", "--task", "sentiment", "--out", export.to_str().unwrap()]);
    let text = std::fs::read_to_string(&export).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut train, mut test) = (vec![header.to_owned()], vec!["text\tsentiment".to_owned()]);
    for line in lines {
        let text = line.split('\t').next().unwrap();
        let subject = text.split(" giờ ").next().unwrap();
        if stable_hash(subject) % 10 < 7 {
            train.push(line.to_owned());
        } else {
            test.push(format!("{text}\tpositive"));
        }
    }
    assert_eq!(train.len() + test.len() - 2, wrong_keys.len(), "every correction exported once");
    assert!(test.len() > 8 && train.len() > 20, "a split too small to measure: {} / {}", train.len(), test.len());
    let (train_tsv, test_tsv) = (dir.join("train70.tsv"), dir.join("test30.tsv"));
    std::fs::write(&train_tsv, train.join("\n") + "\n").unwrap();
    std::fs::write(&test_tsv, test.join("\n") + "\n").unwrap();

    // The shipped sentiment head's recipe (models/heads/tuned/sentiment/provenance.json) plus the 70.
    let heads = dir.join("heads");
    let data = [
        "../shared/data/uit-vsfc/train.tsv",
        "../shared/data/aivivn/train.tsv",
        "models/heads/training/city_posts_train.tsv",
    ];
    let mut args = vec!["train-head", "--task", "sentiment", "--hidden", "512"];
    for d in data {
        args.extend(["--data", d]);
    }
    let out = heads.join("sentiment");
    args.extend(["--data", train_tsv.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    citypulse(&server, &args);
    copy_dir(&repo().join("models/heads/tuned/topic"), &heads.join("topic"));

    let ((before, after), _) = accuracy_before_after(&test_tsv, &heads);
    eprintln!("the held-out 30% of corrections ({} posts): {before:.3} -> {after:.3}", test.len() - 1);
    assert!(after - before >= 0.10, "the corrected kind gains at least 10 points: {before:.3} -> {after:.3}");
    let uit = repo().join("../shared/data/uit-vsfc/dev.tsv");
    let ((before, after), _) = accuracy_before_after(&uit, &heads);
    eprintln!("uit-vsfc dev: {before:.4} -> {after:.4}");
    assert!(after >= before - 0.01, "uit-vsfc dev loses at most 1 point: {before:.4} -> {after:.4}");
    // train-head writes the rows it held out of each file: the AIVIVN held-out tenth.
    let aivivn = repo().join(".local/dev-splits/aivivn-train.sentiment.heldout.tsv");
    let ((before, after), (polar_before, polar_after)) = accuracy_before_after(&aivivn, &heads);
    eprintln!("AIVIVN held-out tenth: {before:.4} -> {after:.4}; polarity {polar_before:.4} -> {polar_after:.4}");
    assert!(after >= before - 0.01, "the AIVIVN held-out tenth loses at most 1 point: {before:.4} -> {after:.4}");
    assert!(
        polar_after >= polar_before - 0.01,
        "and at most 1 point of polarity accuracy, the figure reported for AIVIVN: {polar_before:.4} -> {polar_after:.4}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn stable_hash(text: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(text.as_bytes());
    u64::from_le_bytes(d[..8].try_into().unwrap())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}
