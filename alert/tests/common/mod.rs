//! Alert test helpers: a migrated database of its own, a scripted month of city posts, rules.

#![allow(dead_code)]

use alert::deliver::RetryPolicy;
use alert::notify::Notifiers;
use alert::{AlertDeps, AlertEvent, AlertSettings};
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use schema::config::alerts::Notifier;
use schema::{
    AnalyzedPost, Lang, ModelInfo, PlaceId, Sentiment, SentimentProbabilities, SourceId, TopicId, TopicScore,
};
use store::{CityZone, Database, Writer, WriterConfig};
use tokio_util::sync::CancellationToken;

pub const ZONE: &str = "Asia/Ho_Chi_Minh";

pub fn tz() -> Tz {
    ZONE.parse().expect("zone")
}

/// Local time in Ho Chi Minh City.
pub fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    tz().with_ymd_and_hms(y, m, d, h, min, 0).single().expect("local time").with_timezone(&Utc)
}

pub struct TestDb {
    pub client: clickhouse::Client,
    pub db: Database,
}

impl TestDb {
    /// `None` (the test skips) when no ClickHouse is configured; see testkit.
    pub async fn new(prefix: &str) -> Option<TestDb> {
        let url = testkit::clickhouse_url()?;
        let client = clickhouse::Client::default().with_url(url).with_validation(false);
        let db = Database::new(&testkit::unique_name(prefix)).expect("db name");
        store::migrate(&client, &db, CityZone::new(ZONE).expect("zone")).await.expect("migrate");
        Some(TestDb { client, db })
    }

    pub async fn write(&self, posts: Vec<AnalyzedPost>) {
        let writer = Writer::new(self.client.clone(), self.db.clone(), WriterConfig::default());
        for chunk in posts.chunks(5000) {
            let r = writer.write(chunk.to_vec(), &CancellationToken::new()).await.expect("write");
            assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        }
    }

    pub async fn count(&self, sql: &str) -> u64 {
        self.client.query(&sql.replace("DB.", &format!("{}.", self.db))).fetch_one::<u64>().await.expect(sql)
    }

    pub async fn drop_db(&self) {
        self.client.query(&format!("DROP DATABASE IF EXISTS {}", self.db)).execute().await.expect("drop");
    }

    pub fn settings(&self, rules: &str) -> AlertSettings {
        let config: schema::config::AlertsConfig = toml::from_str(rules).expect("rules");
        AlertSettings {
            db: self.db.clone(),
            zone: CityZone::new(ZONE).expect("zone"),
            tz: tz(),
            every: std::time::Duration::from_secs(60),
            notify: config.rule.iter().map(|r| (r.name.clone(), r.notify.clone())).collect(),
            rules: config.rule,
            searches: Default::default(),
            public_url: Some(url::Url::parse("https://citypulse.example.vn").expect("url")),
            digest: None,
        }
    }

    /// Short timeouts and backoff, so a test's failing receivers cost little time.
    pub fn deps(&self, notifiers: &[Notifier], secret: Option<&str>) -> AlertDeps {
        let policy = RetryPolicy {
            max_attempts: 5,
            timeout: std::time::Duration::from_millis(400),
            backoff_base: std::time::Duration::from_millis(50),
            backoff_max: std::time::Duration::from_millis(200),
        };
        self.deps_with(notifiers, secret, policy)
    }

    pub fn deps_with(&self, notifiers: &[Notifier], secret: Option<&str>, policy: RetryPolicy) -> AlertDeps {
        let secret = secret.map(str::to_owned);
        self.deps_env(notifiers, move |_| secret.clone(), policy)
    }

    /// Deps whose notifiers read their secrets (and SMTP logins) through `env`.
    pub fn deps_env(
        &self,
        notifiers: &[Notifier],
        env: impl Fn(&str) -> Option<String>,
        policy: RetryPolicy,
    ) -> AlertDeps {
        let notifiers = Notifiers::build(notifiers, env, &policy).expect("notifiers");
        AlertDeps {
            client: self.client.clone(),
            notifiers,
            health: stagekit::Health::default().stage(stagekit::StageName::Alert),
            digest: None,
        }
    }

    pub async fn once(&self, rules: &str, at: DateTime<Utc>, dry_run: bool) -> Vec<AlertEvent> {
        let log: Vec<Notifier> = toml::from_str::<schema::config::AlertsConfig>(LOG).expect("log").notifier;
        alert::evaluate_once(&self.settings(rules), self.deps(&log, None), at, dry_run).await.expect("evaluate")
    }
}

/// The log notifier every rule string below names.
pub const LOG: &str = "[[notifier]]\nname = \"log\"\nkind = \"log\"\n";

#[derive(Debug, Clone, Copy)]
pub enum Mood {
    Negative,
    Neutral,
    Positive,
}

pub fn post(id: &str, at: DateTime<Utc>, topic: &str, place: Option<&str>, mood: Mood, text: &str) -> AnalyzedPost {
    let (negative, neutral, positive) = match mood {
        Mood::Negative => (0.8, 0.1, 0.1),
        Mood::Neutral => (0.1, 0.8, 0.1),
        Mood::Positive => (0.1, 0.1, 0.8),
    };
    AnalyzedPost {
        id: id.into(),
        source: SourceId::new("mastodon_test").expect("source"),
        url: Some(format!("https://mastodon.example/@x/{id}")),
        author: "00ff".into(),
        lang_declared: Some("vi".into()),
        created_at: at,
        fetched_at: at + Duration::seconds(20),
        places: place.iter().map(|p| PlaceId::new(*p).expect("place")).collect(),
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: text.into(),
        lang: Lang::Vi,
        sentiment: Sentiment::from_probabilities(SentimentProbabilities { negative, neutral, positive }),
        topics: vec![TopicScore { id: TopicId::new(topic).expect("topic"), score: 0.8 }],
        model: ModelInfo { id: "multilingual-e5-small".into(), version: "test".into() },
        analyzed_at: at + Duration::seconds(30),
        embedding: None,
        search: None,
    }
}

const TOPICS: [&str; 3] = ["flooding", "traffic", "air_quality"];
const PLACES: [Option<&str>; 3] = [Some("district_7"), Some("district_1"), None];

/// Four weeks and a day before `end` of a city's ordinary rhythm (so a four-week baseline has its
/// four samples): 2 posts an hour at night, 12 by day,
/// spread over three topics and places, a quarter negative; and on weekdays from 07:00 to 09:00
/// a rush hour of 50 more traffic posts in District 1, seven in ten negative.
pub fn ordinary_month(end: DateTime<Utc>) -> Vec<AnalyzedPost> {
    let zone = tz();
    let mut posts = Vec::new();
    let mut hour = end - Duration::days(29);
    while hour < end {
        let l = hour.with_timezone(&zone);
        let n = if l.hour() < 6 { 2 } else { 12 };
        for i in 0..n {
            let at = hour + Duration::seconds(i64::from(i) * 3600 / i64::from(n));
            // Each topic's posts of an hour run positive, negative, positive, neutral: a quarter
            // negative, net sentiment +0.25, every hour alike.
            let mood = [Mood::Positive, Mood::Negative, Mood::Positive, Mood::Neutral][((i / 3) % 4) as usize];
            let topic = TOPICS[(i % 3) as usize];
            let place = PLACES[((i / 3) % 3) as usize];
            posts.push(post(&format!("m{}-{i}", hour.timestamp()), at, topic, place, mood, "bài đăng bình thường"));
        }
        let weekday = !matches!(l.weekday(), Weekday::Sat | Weekday::Sun);
        if weekday && (7..9).contains(&l.hour()) {
            for i in 0..50 {
                let at = hour + Duration::seconds(i * 72);
                let mood = if i % 10 < 7 { Mood::Negative } else { Mood::Neutral };
                let text = "kẹt xe quá trời ở Quận 1";
                posts.push(post(&format!("r{}-{i}", hour.timestamp()), at, "traffic", Some("district_1"), mood, text));
            }
        }
        hour += Duration::hours(1);
    }
    posts
}

/// `n` flooding posts in District 7 in the `minutes` before `end`, four in five negative, all
/// saying "ngập" (one without diacritics, as people type).
pub fn flood(end: DateTime<Utc>, n: i64, minutes: i64, tag: &str) -> Vec<AnalyzedPost> {
    (0..n)
        .map(|i| {
            let at = end - Duration::seconds(minutes * 60) + Duration::seconds(i * minutes * 60 / n);
            let mood = if i % 5 == 4 { Mood::Neutral } else { Mood::Negative };
            let text = if i % 7 == 0 {
                "duong ngap qua troi o quan 7"
            } else {
                "Đường Nguyễn Hữu Thọ ngập sâu, xe chết máy"
            };
            post(&format!("flood-{tag}-{i}"), at, "flooding", Some("district_7"), mood, text)
        })
        .collect()
}
