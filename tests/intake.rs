//! The 1022 intake end to end: `citypulse run --stages analyze,store,serve` with an `[[intake]]`
//! channel, on an in-process Kafka (librdkafka's MockCluster over 127.0.0.1) and the test
//! ClickHouse. A real HTTP client (curl) pushes 1,000 records in batches of JSON, NDJSON and CSV,
//! with bad rows, repeated ids and a whole batch pushed twice, and tries a wrong token, a missing
//! one, an unknown channel, a wrong content type, an oversized body, too many records and a burst
//! over the channel's rate. Every record must get its answer, every accepted record must reach
//! ClickHouse exactly once (and nothing else), and no phone number, e-mail or citizen id may be
//! left in any stored text. Then `citypulse import` of a JSONL export, killed part-way and run
//! again: every valid record taken once, every bad one in the rejects file.

mod common;

use common::child::{citypulse, free_port, model_ready, serial, Running};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CHANNEL: &str = "hotline_1022";
const TOKEN: &str = "intake-token-for-tests-1022";
const MAX_BODY: usize = 65_536;
const MAX_RECORDS: usize = 200;

/// A MockCluster, a database and a config folder with one intake channel.
struct Env {
    cluster: MockCluster<'static, DefaultProducerContext>,
    dir: PathBuf,
    db: String,
    ch_url: String,
    rt: tokio::runtime::Runtime,
    client: clickhouse::Client,
}

impl Env {
    fn new(prefix: &str, ch_url: String) -> Env {
        let name = common::unique_name(prefix);
        let dir = std::env::temp_dir().join(&name);
        common::copy_config_into(&dir);
        std::fs::write(
            dir.join("sources.toml"),
            format!(
                "# intake test: the city's own channel only.\n[[intake]]\nname = \"{CHANNEL}\"\n\
                 token_env = \"TEST_INTAKE_TOKEN\"\nmax_body_bytes = {MAX_BODY}\nmax_records = {MAX_RECORDS}\n\
                 requests_per_second = 2.0\nburst = 4\n"
            ),
        )
        .expect("sources.toml");
        let cluster = MockCluster::new(1).expect("mock cluster");
        for (topic, partitions) in [("posts.raw", 3), ("posts.analyzed", 3), ("posts.dlq", 1)] {
            cluster.create_topic(topic, partitions, 1).expect("topic");
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let client = clickhouse::Client::default().with_url(ch_url.clone()).with_validation(false);
        Env { cluster, dir, db: name, ch_url, rt, client }
    }

    /// `citypulse --config DIR <args>` with this environment's Kafka, ClickHouse and token.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = citypulse(&self.dir, args);
        cmd.env("CITYPULSE_AUTHOR_KEY", "intake-test-author-key-0123456789abcdef")
            .env("TEST_INTAKE_TOKEN", TOKEN)
            .env("CITYPULSE__KAFKA__BROKERS", self.cluster.bootstrap_servers())
            .env("CITYPULSE__KAFKA__PARTITIONS", "3")
            .env("CITYPULSE__CLICKHOUSE__URL", &self.ch_url)
            .env("CITYPULSE__CLICKHOUSE__DATABASE", &self.db)
            .env("CITYPULSE__INGEST__STATE_DIR", self.dir.join("state"))
            .env("CITYPULSE__STORE__BATCH_PERIOD_MS", "200")
            .env("CITYPULSE__RUN__METRICS_PORT", "0")
            .env("NO_COLOR", "1");
        cmd
    }

    fn rows<T: clickhouse::RowOwned + clickhouse::RowRead>(&self, sql: &str) -> Vec<T> {
        let sql = sql.replace("DB.", &format!("{}.", self.db));
        self.rt.block_on(self.client.query(&sql).fetch_all::<T>()).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Distinct ids in intake_seen.
    fn seen_ids(&self) -> BTreeSet<String> {
        self.rows::<String>(&format!("SELECT DISTINCT id FROM DB.intake_seen WHERE channel = '{CHANNEL}'"))
            .into_iter()
            .collect()
    }

    /// Every message key in posts.raw, with repeats.
    fn raw_keys(&self) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", common::unique_name("intake_reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut remaining = 0i64;
        for p in 0..3 {
            let (low, high) = consumer.fetch_watermarks("posts.raw", p, Duration::from_secs(5)).expect("watermarks");
            remaining += high - low;
        }
        consumer.subscribe(&["posts.raw"]).expect("subscribe");
        let mut keys = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (keys.len() as i64) < remaining && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
                use rdkafka::Message;
                keys.push(String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned());
            }
        }
        assert_eq!(keys.len() as i64, remaining, "posts.raw messages read");
        keys
    }

    fn clean_up(self) {
        self.rt.block_on(self.client.query(&format!("DROP DATABASE IF EXISTS {}", self.db)).execute()).ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

// ------------------------------------------------------------------------------------------------
// The records

/// What each record is meant to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    EmptyText,
    BadTime,
    /// Malformed in the batch's own format (a broken JSON line, a short CSV row, no text field).
    Broken,
}

fn kind_of(i: usize) -> Kind {
    match i % 50 {
        7 => Kind::EmptyText,
        17 => Kind::BadTime,
        27 => Kind::Broken,
        _ => Kind::Valid,
    }
}

const CATEGORIES: [&str; 4] = ["Ngập nước", "Chiếu sáng", "Vệ sinh môi trường", "Cấp nước"];
const PLACES: [&str; 6] = ["Quận 7", "Bình Thạnh", "Gò Vấp", "Thủ Đức", "district_1", "Nhà Bè"];

/// Record `i`: text with a phone, an e-mail or a citizen id in some, an author phone in some.
fn record(i: usize) -> Value {
    let place = PLACES[i % PLACES.len()];
    let pii = match i % 5 {
        1 => format!(" Liên hệ số 0903 {:03} {:03} giúp em.", i % 1000, (i * 7) % 1000),
        2 => format!(" Email: nguyen.van.{i}@gmail.com"),
        3 => format!(" CCCD của tôi 079201{:06}.", i * 13),
        _ => String::new(),
    };
    let text = match kind_of(i) {
        Kind::EmptyText => "   ".to_owned(),
        _ => match i % 4 {
            0 => format!("Đường ngập nặng sau mưa, xe chết máy hàng loạt.{pii}"),
            1 => format!("Đèn đường hỏng cả tuần nay, tối đi rất nguy hiểm.{pii}"),
            2 => format!("Rác thải đổ trộm bốc mùi, mong phường xử lý.{pii}"),
            _ => format!("Cúp nước từ sáng tới giờ chưa có lại.{pii}"),
        },
    };
    let minutes = 5 + (i as i64 * 13) % 1300;
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes);
    let created_at = match kind_of(i) {
        Kind::BadTime => "hôm qua lúc 8 giờ".to_owned(),
        _ if i.is_multiple_of(2) => {
            at.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh).format("%Y-%m-%d %H:%M:%S").to_string()
        }
        _ => at.to_rfc3339(),
    };
    let mut r = json!({ "id": format!("r{i:04}"), "text": text, "created_at": created_at, "place": place,
                        "category": CATEGORIES[i % 4] });
    if i.is_multiple_of(3) {
        r["author"] = json!(format!("09{:08}", i * 7919));
    }
    r
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The body of records `ids` in `format`; a `Broken` record is broken in that format's way.
fn body(ids: &[usize], format: Format) -> Vec<u8> {
    let records: Vec<(usize, Value)> = ids.iter().map(|&i| (i, record(i))).collect();
    match format {
        Format::Json => {
            let items: Vec<Value> = records
                .into_iter()
                .map(|(i, mut r)| {
                    if kind_of(i) == Kind::Broken {
                        r.as_object_mut().unwrap().remove("text");
                    }
                    r
                })
                .collect();
            serde_json::to_vec(&items).unwrap()
        }
        Format::Ndjson => records
            .into_iter()
            .flat_map(|(i, r)| {
                let line = if kind_of(i) == Kind::Broken {
                    format!("{{\"id\": \"r{i:04}\", \"text\": ")
                } else {
                    r.to_string()
                };
                format!("{line}\n").into_bytes()
            })
            .collect(),
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
            w.write_record(["id", "created_at", "text", "place", "category", "author"]).unwrap();
            for (i, r) in records {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
                if kind_of(i) == Kind::Broken {
                    w.write_record([s("id"), s("created_at")]).unwrap();
                } else {
                    w.write_record([s("id"), s("created_at"), s("text"), s("place"), s("category"), s("author")])
                        .unwrap();
                }
            }
            w.into_inner().unwrap()
        }
    }
}

// ------------------------------------------------------------------------------------------------
// curl

struct Reply {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
    raw: String,
}

/// POSTs `body` with curl; `token` None sends no Authorization header.
fn curl(base: &str, channel: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Reply {
    let dir = std::env::temp_dir().join(common::unique_name("curl"));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, headers, output) = (dir.join("body"), dir.join("headers"), dir.join("out"));
    std::fs::write(&input, body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-X", "POST", "-H"])
        .arg(format!("Content-Type: {content_type}"))
        .arg("--data-binary")
        .arg(format!("@{}", input.display()))
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&output)
        .args(["-w", "%{http_code}"])
        .arg(format!("{base}/api/v1/intake/{channel}"));
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    let out = cmd.output().expect("curl (apt install curl)");
    // No connection (the server is still starting) is status 0; curl says why on stderr.
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    let head = std::fs::read_to_string(&headers).unwrap_or_default();
    let retry_after = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok());
    let raw = std::fs::read_to_string(&output).unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    let raw = if status == 0 { String::from_utf8_lossy(&out.stderr).into_owned() } else { raw };
    Reply { status, retry_after, body: serde_json::from_str(&raw).unwrap_or(Value::Null), raw }
}

/// POSTs with the channel's token until the answer is not a 429 (waiting as Retry-After says).
fn post_patiently(base: &str, content_type: &str, body: &[u8]) -> Reply {
    for _ in 0..20 {
        let reply = curl(base, CHANNEL, Some(TOKEN), content_type, body);
        if reply.status != 429 {
            return reply;
        }
        std::thread::sleep(Duration::from_secs(reply.retry_after.expect("429 without Retry-After")));
    }
    panic!("still throttled after 20 tries");
}

/// Pushes records `ids` as `format`; the answer must be a 200.
fn push(base: &str, ids: &[usize], format: Format) -> Value {
    let reply = post_patiently(base, format.content_type(), &body(ids, format));
    assert_eq!(reply.status, 200, "push of {} records as {format:?}: {}", ids.len(), reply.raw);
    reply.body
}

/// Status of each record of an answer, by id (records without an id by index).
fn statuses(answer: &Value) -> Vec<(String, String, String)> {
    answer["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            let id = r["id"].as_str().map(str::to_owned).unwrap_or_else(|| format!("#{}", r["index"]));
            (id, r["status"].as_str().unwrap_or("?").to_owned(), r["kind"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// The tests

#[test]
fn a_thousand_pushed_records_reach_clickhouse_once_and_without_pii() {
    if !model_ready() {
        return;
    }
    let Some(url) = common::clickhouse_url() else { return };
    let _serial = serial();
    let env = Env::new("intake_push", url);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = env.command(&["run", "--stages", "analyze,store,serve"]);
    cmd.env("CITYPULSE__SERVE__LISTEN", format!("127.0.0.1:{port}"));
    let mut run = Running::spawn(cmd, "intake");
    run.wait_for("the intake to answer", Duration::from_secs(180), || {
        match curl(&base, CHANNEL, None, "application/json", b"[]") {
            r if r.status == 401 => Ok(()),
            r => Err(format!("status {}: {}", r.status, r.raw.trim())),
        }
    });

    // What is refused whole.
    let tiny = r#"[{"id":"x1","text":"Ngập","created_at":"2026-12-01 08:00"}]"#.as_bytes();
    for (token, channel, what) in [
        (Some("wrong"), CHANNEL, "a wrong token"),
        (None, CHANNEL, "no token"),
        (Some(TOKEN), "other", "an unknown channel"),
    ] {
        let r = curl(&base, channel, token, "application/json", tiny);
        assert_eq!((r.status, r.raw.as_str()), (401, ""), "{what}: 401 and no detail");
    }
    std::thread::sleep(Duration::from_secs(3)); // the burst refills
    assert_eq!(curl(&base, CHANNEL, Some(TOKEN), "text/plain", tiny).status, 415);
    let oversized = body(&(0..400).collect::<Vec<_>>(), Format::Ndjson);
    assert!(oversized.len() > MAX_BODY);
    let r = curl(&base, CHANNEL, Some(TOKEN), "application/x-ndjson", &oversized);
    assert_eq!(r.status, 413, "oversized body: {}", r.raw);
    let many: Vec<Value> =
        (0..MAX_RECORDS + 1).map(|i| json!({"id": format!("m{i}"), "text": "x", "created_at": "2026-12-01"})).collect();
    let r = curl(&base, CHANNEL, Some(TOKEN), "application/json", &serde_json::to_vec(&many).unwrap());
    assert_eq!(r.status, 413, "too many records: {}", r.raw);
    assert!(r.raw.contains("at most 200"), "{}", r.raw);
    // A burst over 2 requests/s (burst 4): some are throttled with Retry-After, none is taken.
    let replies: Vec<Reply> = (0..10).map(|_| curl(&base, CHANNEL, Some(TOKEN), "application/json", b"[]")).collect();
    let throttled: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        !throttled.is_empty(),
        "no 429 in a burst of 10: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(throttled.iter().all(|r| r.retry_after.is_some_and(|s| s >= 1)), "429 without Retry-After");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));

    // 1,000 records in ten batches; each batch repeats the last 5 ids of the one before.
    let formats = [Format::Json, Format::Ndjson, Format::Csv];
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut accepted = BTreeSet::new();
    for b in 0..10usize {
        let ids: Vec<usize> = ((b * 100).saturating_sub(if b > 0 { 5 } else { 0 })..(b + 1) * 100).collect();
        let answer = push(&base, &ids, formats[b % 3]);
        let got = statuses(&answer);
        assert_eq!(got.len(), ids.len(), "one answer per record");
        for (k, &i) in ids.iter().enumerate() {
            let (id, status, kind) = &got[k];
            let repeated = b > 0 && k < 5;
            let want = match kind_of(i) {
                Kind::Valid if repeated => "duplicate",
                Kind::Valid => "accepted",
                _ => "rejected",
            };
            assert_eq!(status, want, "batch {b} record {k} ({id}, {:?}, kind {kind})", kind_of(i));
            if status == "accepted" {
                accepted.insert(id.clone());
            }
            *tally.entry(status.clone()).or_default() += 1;
        }
    }
    // A whole batch again, as CSV this time: nothing new.
    let again = push(&base, &(200..300).collect::<Vec<_>>(), Format::Csv);
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(again["duplicate"], 94, "{again}");
    // The same id with other text: a duplicate that says so.
    let changed = r#"[{"id":"r0000","text":"Nội dung khác","created_at":"2026-12-01 08:00"}]"#.as_bytes();
    let r = post_patiently(&base, "application/json", changed);
    assert!(r.body["records"][0]["reason"].as_str().unwrap_or("").contains("other content"), "{}", r.raw);

    let valid: BTreeSet<String> =
        (0..1000).filter(|&i| kind_of(i) == Kind::Valid).map(|i| format!("r{i:04}")).collect();
    assert_eq!(accepted, valid, "accepted = exactly the valid records");
    eprintln!("answers: {tally:?}");

    // Every accepted record in ClickHouse once, nothing else; no PII in any stored text.
    let want_keys: BTreeSet<String> = valid.iter().map(|id| format!("{CHANNEL}:{id}")).collect();
    run.wait_for("every accepted record stored", Duration::from_secs(240), || {
        let stored = env
            .rows::<u64>("SELECT toUInt64(count()) FROM (SELECT key FROM DB.posts GROUP BY key HAVING sum(sign) = 1)");
        match stored.first() {
            Some(&n) if n as usize == want_keys.len() => Ok(()),
            other => Err(format!("{other:?} of {} stored", want_keys.len())),
        }
    });
    std::thread::sleep(Duration::from_secs(2)); // a late duplicate would land by now
    let signs: BTreeMap<String, i64> =
        env.rows::<(String, i64)>("SELECT key, toInt64(sum(sign)) FROM DB.posts GROUP BY key").into_iter().collect();
    assert_eq!(signs.keys().cloned().collect::<BTreeSet<_>>(), want_keys, "stored keys");
    assert!(signs.values().all(|s| *s == 1), "a key stored other than once");
    let counted = env.rows::<i64>(&format!(
        "SELECT toInt64(sum(posts)) FROM DB.trends_daily WHERE topic = '*' AND place = '*' AND source = '{CHANNEL}'"
    ));
    assert_eq!(counted, vec![want_keys.len() as i64], "trend count of the channel");
    let texts = env.rows::<(String, String)>("SELECT text_redacted, author FROM DB.posts");
    let digits = regex_free_long_digit_run;
    for (text, author) in &texts {
        assert!(!text.contains("@gmail") && !text.contains("0903 ") && !text.contains("079201"), "PII left: {text}");
        assert!(!digits(text), "a long number left: {text}");
        let pseudonym = author.len() == 32 && author.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(pseudonym, "an author that is not a pseudonym: {author}");
    }
    assert!(texts.iter().any(|(t, _)| t.contains("[phone]")) && texts.iter().any(|(t, _)| t.contains("[email]")));
    assert!(texts.iter().any(|(t, _)| t.contains("[id]")), "citizen ids become [id]");
    assert_eq!(env.seen_ids(), valid, "intake_seen holds the accepted ids");
    let cats = env.rows::<u64>("SELECT toUInt64(uniqExact(category)) FROM DB.intake_seen");
    assert_eq!(cats, vec![4], "the channel's categories are kept");
    run.signal("INT");
    assert_eq!(run.wait_exit(Duration::from_secs(60)).code(), Some(0));
    drop(run);
    env.clean_up();
}

/// Whether `text` holds 9 or more digits in a row (ignoring single spaces, dots and dashes).
fn regex_free_long_digit_run(text: &str) -> bool {
    let (mut run, mut longest) = (0, 0);
    let chars: Vec<char> = text.chars().collect();
    for (k, c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            run += 1;
            longest = longest.max(run);
        } else if !(matches!(c, ' ' | '.' | '-') && chars.get(k + 1).is_some_and(char::is_ascii_digit)) {
            run = 0;
        }
    }
    longest >= 9
}

/// `citypulse import` of a JSONL export with bad lines, killed part-way, then run again.
#[test]
fn an_interrupted_import_resumes_and_takes_every_record_once() {
    let Some(url) = common::clickhouse_url() else { return };
    let env = Env::new("intake_import", url);
    let n = 3000;
    let file = env.dir.join("export-1022.jsonl");
    let body = body(&(0..n).collect::<Vec<_>>(), Format::Ndjson);
    std::fs::write(&file, body).unwrap();
    let rejects = env.dir.join("rejects.jsonl");
    let args = |extra: &[&str]| {
        let mut a = vec!["import", file.to_str().unwrap(), "--channel", CHANNEL, "--batch", "20", "--rejects"];
        a.push(rejects.to_str().unwrap());
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let strs = |v: &Vec<String>| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let checkpoint_dir = env.dir.join("state/import");
    let mut first = Running::spawn(env.command(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>()), "import-1");
    first.wait_for("a checkpoint past record 400", Duration::from_secs(120), || match done_records(&checkpoint_dir) {
        Some(done) if done >= 400 => Ok(()),
        other => Err(format!("{other:?}")),
    });
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    let done_before = done_records(&checkpoint_dir).unwrap();
    assert!(done_before < n as u64, "the import finished before it was killed; nothing to resume");
    eprintln!("killed after record {done_before}; running `citypulse {}` again", strs(&args(&[])));

    let out = env.command(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "second run: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    let valid: BTreeSet<String> = (0..n).filter(|&i| kind_of(i) == Kind::Valid).map(|i| format!("r{i:04}")).collect();
    let bad: BTreeSet<u64> = (0..n).filter(|&i| kind_of(i) != Kind::Valid).map(|i| i as u64).collect();
    // The tally over both runs: every valid record accepted once, except those of the one batch
    // sent before the kill and not checkpointed, which come back as duplicates.
    let tally = summary_counts(&stdout).unwrap_or_else(|| panic!("no summary: {stdout}"));
    assert_eq!(tally.0, n, "{stdout}");
    assert_eq!((tally.1 + tally.2, tally.3), (valid.len(), bad.len()), "{stdout}");
    assert!(tally.2 <= 20, "{} duplicates: the second run did not go on from the checkpoint", tally.2);
    assert_eq!(env.seen_ids(), valid, "intake_seen: every valid record, once");
    let keys = env.raw_keys();
    let distinct: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(distinct, valid.iter().map(|id| format!("{CHANNEL}:{id}")).collect(), "posts.raw keys");
    assert!(
        keys.len() <= valid.len() + 20,
        "{} messages for {} records: more than one batch resent",
        keys.len(),
        valid.len()
    );
    let rejected: Vec<u64> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, bad.iter().copied().collect::<Vec<_>>(), "the rejects file lists each bad record once");
    let third = env.command(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
    assert!(String::from_utf8_lossy(&third.stdout).contains("imported into hotline_1022 already"));
    env.clean_up();
}

/// (records, accepted, duplicate, rejected) from `… N records: A accepted, D duplicate, R rejected`.
fn summary_counts(stdout: &str) -> Option<(usize, usize, usize, usize)> {
    let line = stdout.lines().find(|l| l.contains(" records: "))?;
    let numbers: Vec<usize> = line
        .rsplit(": ")
        .nth(1)
        .map(|head| head.split(' ').next().unwrap_or(""))
        .into_iter()
        .chain(line.rsplit(": ").next()?.split(", ").map(|part| part.split(' ').next().unwrap_or("")))
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    match numbers[..] {
        [records, accepted, duplicate, rejected] => Some((records, accepted, duplicate, rejected)),
        _ => None,
    }
}

/// Records done according to the (one) checkpoint in `dir` (its cursor is the import's progress).
fn done_records(dir: &Path) -> Option<u64> {
    let entry = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))?;
    let saved: Value = serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()?;
    let progress: Value = serde_json::from_str(saved["cursor"].as_str()?).ok()?;
    progress["records"].as_u64()
}
