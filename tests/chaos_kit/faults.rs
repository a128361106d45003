//! The faults, and the stream of known posts they hit.

use super::check::Expected;
use super::pipeline::Pipeline;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// SIGKILL of one process, restarted `after`.
    Kill { process: &'static str, after: Duration },
    /// Malformed, oversized, unknown-version and wrong-type messages on posts.raw and posts.analyzed.
    Poison,
    /// `DETACH TABLE posts` for `for_`, then ATTACH: the writer must wait, not drop.
    DetachPosts { for_: Duration },
    /// ClickHouse SIGKILLed and down for `for_` (a ClickHouse of the chaos run's own only).
    ClickHouseDown { for_: Duration },
    /// The Kafka broker down for `for_`, then back with its data (the run's own mock broker).
    BrokerDown { for_: Duration },
    /// The broker restarted without its data: topics, messages and the groups' offsets gone (the
    /// run's own tansu). Not followed by the exactness check: the posts it held unread are lost.
    BrokerLosesEverything,
    /// The crawled server answers 7 requests in 10 with 429 or 503 (Retry-After: 1) for `for_`.
    CrawlerStorm { for_: Duration },
    /// The crawled server takes requests and never answers, for `for_`.
    CrawlerHang { for_: Duration },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Kill { process, after } => {
                write!(f, "SIGKILL {process}, restart after {:.1} s", after.as_secs_f64())
            }
            Fault::Poison => write!(f, "poisoned messages on posts.raw and posts.analyzed"),
            Fault::DetachPosts { for_ } => write!(f, "DETACH TABLE posts for {} s", for_.as_secs()),
            Fault::ClickHouseDown { for_ } => write!(f, "ClickHouse SIGKILLed, down {} s", for_.as_secs()),
            Fault::BrokerDown { for_ } => write!(f, "Kafka broker down {} s", for_.as_secs()),
            Fault::BrokerLosesEverything => write!(f, "Kafka broker restarted without its data"),
            Fault::CrawlerStorm { for_ } => write!(f, "429/503 storm at the crawled server for {} s", for_.as_secs()),
            Fault::CrawlerHang { for_ } => write!(f, "the crawled server hangs for {} s", for_.as_secs()),
        }
    }
}

/// Takes the chaos run's own services down and up again.
pub trait ServiceControl {
    fn kill_clickhouse(&self);
    fn start_clickhouse(&self);
    fn broker_down(&self);
    fn broker_up(&self);
    fn restart_broker_empty(&self);
}

/// Applies `fault`; records in `expected` what it must leave behind (DLQ records).
pub fn apply(fault: Fault, p: &mut Pipeline, expected: &mut Expected, own: Option<&dyn ServiceControl>) {
    let own = || own.expect("this fault needs the chaos run's own services");
    match fault {
        Fault::Kill { process, after } => {
            p.kill9(process);
            std::thread::sleep(after);
            p.start(process);
        }
        Fault::Poison => {
            // The kind each must carry is the decoder's verdict on it (the contract of schema::decode).
            let limits = schema::Limits::default();
            for bytes in poison() {
                for (topic, stage, kind) in [
                    ("raw", "analyze", schema::decode::<schema::Post>(&bytes, &limits).err()),
                    ("analyzed", "store", schema::decode::<schema::AnalyzedPost>(&bytes, &limits).err()),
                ] {
                    let kind = kind.expect("a poisoned message that decodes").kind();
                    produce(&p.services.brokers, &format!("{}.{topic}", p.name), &bytes);
                    *expected.dlq.entry((stage.to_owned(), kind.to_owned())).or_insert(0) += 1;
                }
            }
        }
        Fault::DetachPosts { for_ } => {
            let url = p.services.clickhouse.clone();
            super::check::clickhouse(&url, &format!("DETACH TABLE {}.posts", p.name)).expect("DETACH");
            std::thread::sleep(for_);
            super::check::clickhouse(&url, &format!("ATTACH TABLE {}.posts", p.name)).expect("ATTACH");
        }
        Fault::ClickHouseDown { for_ } => {
            own().kill_clickhouse();
            std::thread::sleep(for_);
            own().start_clickhouse();
        }
        Fault::BrokerDown { for_ } => {
            own().broker_down();
            std::thread::sleep(for_);
            own().broker_up();
        }
        Fault::BrokerLosesEverything => own().restart_broker_empty(),
        Fault::CrawlerStorm { for_ } | Fault::CrawlerHang { for_ } => {
            let fake = p.mastodon.as_ref().expect("a crawler fault needs a crawl cycle");
            fake.mode(if matches!(fault, Fault::CrawlerStorm { .. }) { "storm" } else { "hang" });
            std::thread::sleep(for_);
            fake.mode("normal");
        }
    }
}

/// Messages the decoders must reject: malformed JSON, oversized, an unknown major version, and
/// valid JSON of the right version with the wrong types (id a number, text an array).
fn poison() -> Vec<Vec<u8>> {
    let oversized = format!(r#"{{"schema_version":"1.0","id":"big","text":"{}"}}"#, "x".repeat(300_000));
    vec![
        b"{\"schema_version\": \"1.0\", \"id\": ".to_vec(),
        oversized.into_bytes(),
        br#"{"schema_version":"9.0","id":"future"}"#.to_vec(),
        br#"{"schema_version":"1.0","id":5,"source":"x","author":"a","text":["no"],"created_at":"2026-01-01T00:00:00Z","fetched_at":"2026-01-01T00:00:00Z"}"#.to_vec(),
    ]
}

fn produce(brokers: &str, topic: &str, bytes: &[u8]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.max.bytes", "1000000")
        .create()
        .expect("producer");
    producer.send(BaseRecord::<(), [u8]>::to(topic).payload(bytes)).map_err(|(e, _)| e).expect("send poison");
    producer.flush(Duration::from_secs(10)).expect("flush poison");
}

/// What the known posts say (each with its cycle and number appended).
pub const TEXTS: [&str; 6] = [
    "Đường Nguyễn Hữu Cảnh ngập sâu sau mưa, xe chết máy",
    "Kẹt xe ở Quận 1 giờ tan tầm, đi mãi không tới",
    "Metro số 1 chạy êm quá, rất tiện",
    "ket xe qua troi o Binh Thanh sang nay",
    "Cúp điện cả buổi chiều ở Gò Vấp",
    "The new bus line through District 7 is clean and on time",
];

/// Writes `n` known posts of cycle `cycle` (ids `c<cycle>-<i>`, created in the last hours) to a
/// replay file; returns its path.
pub fn stream_file(dir: &Path, cycle: usize, n: usize) -> PathBuf {
    let now = chrono::Utc::now();
    let mut out = String::new();
    for i in 0..n {
        let at = now - chrono::Duration::seconds(60 + (i as i64 * 37) % 7200);
        let post = schema::Post {
            id: format!("c{cycle}-{i}"),
            source: schema::SourceId::new(format!("chaos_{cycle}")).expect("source id"),
            url: None,
            author: format!("{:032x}", i % 23),
            text: format!("{} ({cycle}.{i})", TEXTS[i % TEXTS.len()]),
            lang: None,
            created_at: at,
            fetched_at: at,
            places: vec![],
            engagement: Default::default(),
            created_at_estimated: false,
        };
        out.push_str(std::str::from_utf8(&schema::encode(&post)).expect("utf-8"));
        out.push('\n');
    }
    let path = dir.join(format!("stream-{cycle}.jsonl"));
    std::fs::write(&path, out).expect("stream file");
    path
}
