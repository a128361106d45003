//! A `citypulse serve` child process on its own migrated database, and the scripted posts the
//! API and dashboard tests read (shared by tests/serve_api.rs and tests/dashboard.rs).

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const TOKEN: &str = "office-token-for-tests";
/// The `analyst` token every token-closed test server also accepts (its name: "analyst_lan").
pub const ANALYST_TOKEN: &str = "analyst-token-for-tests";
/// The first-party channel every test server declares.
pub const HOTLINE: &str = "hotline_1022";

/// Scripted posts: on 2026-11-30 (city time) 10 flooding posts in District 7, 7 negative, 6 of
/// them saying "ngập" (one unaccented "ngap") and 5 traffic posts; on 2026-11-29, 2 flooding posts.
pub fn scripted() -> Vec<schema::AnalyzedPost> {
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
    let day = |d: u32, h: u32, m: u32| tz.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap().to_utc();
    let mut posts = Vec::new();
    for i in 0..10u32 {
        let text = match i {
            0 => "duong ngap qua troi".to_owned(),
            1..=5 => format!("Đường Nguyễn Hữu Thọ ngập sâu lần {i}"),
            _ => format!("Mưa lớn ở Quận 7, bài {i}"),
        };
        posts.push(post(&format!("f{i}"), day(30, 8, i), "flooding", Some("district_7"), i < 7, &text));
    }
    for i in 0..5u32 {
        posts.push(post(&format!("t{i}"), day(30, 17, i), "traffic", Some("district_1"), false, "Kẹt xe ở Quận 1"));
    }
    for i in 0..2u32 {
        posts.push(post(&format!("y{i}"), day(29, 9, i), "flooding", Some("district_7"), false, "Trời mưa nhẹ"));
    }
    posts
}

fn post(
    id: &str,
    at: DateTime<Utc>,
    topic: &str,
    place: Option<&str>,
    negative: bool,
    text: &str,
) -> schema::AnalyzedPost {
    let p = if negative {
        schema::SentimentProbabilities { negative: 0.75, neutral: 0.125, positive: 0.125 }
    } else {
        schema::SentimentProbabilities { negative: 0.125, neutral: 0.25, positive: 0.625 }
    };
    schema::AnalyzedPost {
        id: id.into(),
        source: schema::SourceId::new("mastodon_social").unwrap(),
        url: Some(format!("https://mastodon.social/@x/{id}")),
        author: "a".repeat(32),
        lang_declared: Some("vi".into()),
        created_at: at,
        fetched_at: at + Duration::seconds(10),
        places: place.iter().map(|p| schema::PlaceId::new(*p).unwrap()).collect(),
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: text.into(),
        lang: schema::Lang::Vi,
        sentiment: schema::Sentiment::from_probabilities(p),
        topics: vec![schema::TopicScore { id: schema::TopicId::new(topic).unwrap(), score: 0.8 }],
        model: schema::ModelInfo { id: "multilingual-e5-small".into(), version: "v1".into() },
        analyzed_at: at + Duration::seconds(20),
        embedding: None,
        search: None,
    }
}

/// A running `citypulse serve` on its own database; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub db: String,
    pub url: String,
    config: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.config);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn config_dir(&self) -> &Path {
        &self.config
    }

    /// Migrates a fresh database, writes `posts`, starts serve (with a token when `token`).
    pub fn start(url: &str, posts: Vec<schema::AnalyzedPost>, token: bool) -> Server {
        let db = super::unique_name("serve");
        let config = std::env::temp_dir().join(super::unique_name("serve_config"));
        super::copy_config_into(&config);
        if token {
            let mut toml = std::fs::read_to_string(config.join("citypulse.toml")).unwrap();
            toml.push_str(
                "\n[[serve.token]]\nname = \"comms_office\"\nenv = \"TEST_SERVE_TOKEN\"\nrole = \"viewer\"\n\
                 \n[[serve.token]]\nname = \"analyst_lan\"\nenv = \"TEST_ANALYST_TOKEN\"\nrole = \"analyst\"\n",
            );
            std::fs::write(config.join("citypulse.toml"), toml).unwrap();
        }
        // The city's own channel, disabled (nothing to push to), whose posts are the official side.
        let mut sources = std::fs::read_to_string(config.join("sources.toml")).unwrap();
        sources.push_str(&format!(
            "\n[[intake]]\nname = \"{HOTLINE}\"\nenabled = false\ntoken_env = \"TEST_INTAKE_TOKEN\"\n"
        ));
        std::fs::write(config.join("sources.toml"), sources).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let client = clickhouse::Client::default().with_url(url).with_validation(false);
            let database = store::Database::new(&db).unwrap();
            store::migrate(&client, &database, store::CityZone::new("Asia/Ho_Chi_Minh").unwrap()).await.unwrap();
            let report = store::Writer::new(client, database, Default::default())
                .write(posts, &Default::default())
                .await
                .unwrap();
            assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
        });
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_citypulse"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env("CITYPULSE__CLICKHOUSE__URL", url)
            .env("CITYPULSE__CLICKHOUSE__DATABASE", &db)
            .env("CITYPULSE__SERVE__LISTEN", format!("127.0.0.1:{port}"))
            .env("TEST_SERVE_TOKEN", TOKEN)
            .env("TEST_ANALYST_TOKEN", ANALYST_TOKEN)
            .env("CITYPULSE__EMERGING__PROPOSALS_DIR", config.join("proposals"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), db, url: url.to_owned(), config };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while get(&server.base, "/healthz", None).0 != 200 {
            assert!(std::time::Instant::now() < deadline, "serve never answered /healthz");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }
}

/// (status, JSON body) of a request with `token` and an optional JSON body.
pub fn send(server: &Server, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request =
        reqwest::blocking::Client::new().request(method, format!("{}{path}", server.base)).bearer_auth(token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().unwrap();
    (response.status().as_u16(), response.json::<Value>().unwrap_or(Value::Null))
}

/// (status, JSON body) of a GET.
pub fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut request = client.get(format!("{base}{path}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    match request.send() {
        Ok(r) => (r.status().as_u16(), r.json().unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

/// The same picture as [`scripted`], placed in the last day (the dashboard opens on 24 h):
/// 10 flooding posts in the last five hours (7 negative), 5 traffic posts, and 2 flooding posts
/// the day before.
pub fn recent() -> Vec<schema::AnalyzedPost> {
    let now = Utc::now();
    let mut posts = scripted();
    for (i, p) in posts.iter_mut().enumerate() {
        let ago = match p.id.chars().next() {
            Some('y') => Duration::hours(30) + Duration::minutes(i as i64),
            _ => Duration::minutes(20 + 17 * i as i64),
        };
        p.created_at = now - ago;
        p.fetched_at = p.created_at;
        p.analyzed_at = p.created_at;
    }
    posts
}

/// `n` flooding reports to the city's hotline in the last hours, the first `negative` of them
/// negative (the official side of the dashboard's comparison).
pub fn hotline_reports(n: usize, negative: usize) -> Vec<schema::AnalyzedPost> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let at = now - Duration::minutes(40 + 23 * i as i64);
            let mut p = post(&format!("h{i}"), at, "flooding", Some("district_7"), i < negative, "Ngập sâu trước nhà");
            p.source = schema::SourceId::new(HOTLINE).unwrap();
            p.url = None;
            p
        })
        .collect()
}

/// Posts no topic claims on the city day `date`, with embeddings: 12 about one closed bridge
/// (directions close together) and 40 about anything (directions scattered), for the emerging job.
pub fn unclaimed(date: chrono::NaiveDate) -> Vec<schema::AnalyzedPost> {
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
    let mut rng = testkit::Xorshift(0x2545_f491_4f6c_dd1d);
    let bridge = rng.vector(384);
    let texts = [
        "Cầu Chữ Y đóng cửa sửa chữa, xe phải đi vòng",
        "cau chu y dong cua sua chua roi, ket xe qua",
        "Sao đóng cầu Chữ Y sửa chữa mà không báo trước",
        "Cầu Chữ Y rào chắn để sửa chữa cả tháng",
    ];
    (0..52)
        .map(|i| {
            let at =
                tz.from_local_datetime(&date.and_hms_opt(9 + (i % 10) as u32, i as u32, 0).unwrap()).unwrap().to_utc();
            let (text, vector): (String, Vec<f32>) = if i < 12 {
                (
                    format!("{} ({i})", texts[i % texts.len()]),
                    bridge.iter().map(|b| b + 0.25 * rng.next_f32()).collect(),
                )
            } else {
                (format!("Chuyện thường ngày số {i}"), rng.vector(384))
            };
            let mut p = post(&format!("u{i}"), at, "other", None, i % 3 != 0, &text);
            p.places = if i < 12 { vec![schema::PlaceId::new("district_8").unwrap()] } else { vec![] };
            p.embedding = Some(schema::Int8Embedding::quantise(&vector));
            p
        })
        .collect()
}
