//! The services of a chaos run of its own: a ClickHouse and a Kafka broker the faults may kill.

use super::faults::ServiceControl;
use super::pipeline::{self, free_port};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The services of a chaos run of its own, so that killing them hurts no other test: a ClickHouse
/// (scripts/services.sh, own folder and ports) and a Kafka broker, one of:
/// - librdkafka's mock cluster, hosted in this test process and reached by the pipeline's processes
///   over TCP: it goes down and comes back with its data (tansu from PyPI keeps data only in memory);
/// - tansu (scripts/services.sh), for the fault of a broker restarted without its data.
///
/// Stopped on drop.
pub struct OwnServices {
    dir: PathBuf,
    env: Vec<(String, String)>,
    pub clickhouse_url: String,
    pub brokers: String,
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

/// Which broker a run of its own gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    Mock,
    Tansu,
}

fn services_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh")
}

impl OwnServices {
    /// Starts them; the mock broker gets the topics of pipeline `name` (tansu: the stages create them).
    pub fn start(dir: PathBuf, name: &str, broker: Broker) -> OwnServices {
        let (http, tcp, kafka_port) = (free_port(), free_port(), free_port());
        let env: Vec<(String, String)> = [
            ("CITYPULSE_SERVICES_DIR", dir.display().to_string()),
            ("CITYPULSE_CH_HTTP_PORT", http.to_string()),
            ("CITYPULSE_CH_TCP_PORT", tcp.to_string()),
            ("CITYPULSE_TANSU_PORT", kafka_port.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mock = (broker == Broker::Mock).then(|| {
            let kafka = MockCluster::new(1).expect("mock cluster");
            for topic in ["raw", "analyzed", "dlq"] {
                kafka.create_topic(&format!("{name}.{topic}"), pipeline::PARTITIONS, 1).expect("create topic");
            }
            kafka
        });
        let brokers = mock.as_ref().map_or_else(|| format!("127.0.0.1:{kafka_port}"), |m| m.bootstrap_servers());
        let own = OwnServices { dir, env, clickhouse_url: format!("http://127.0.0.1:{http}"), brokers, mock };
        own.services("start", "clickhouse");
        if broker == Broker::Tansu {
            own.services("start", "tansu");
        }
        own
    }

    fn services(&self, action: &str, which: &str) {
        let status = Command::new(services_sh())
            .args([action, which])
            .envs(self.env.iter().cloned())
            .status()
            .expect("scripts/services.sh");
        assert!(status.success(), "services.sh {action} {which} failed");
    }

    fn mock(&self) -> &MockCluster<'static, DefaultProducerContext> {
        self.mock.as_ref().expect("this fault needs the mock broker")
    }
}

impl ServiceControl for OwnServices {
    fn kill_clickhouse(&self) {
        let pid_file = self.dir.join("clickhouse/clickhouse.pid");
        let pid = std::fs::read_to_string(&pid_file).expect("ClickHouse pid file");
        let status = Command::new("kill").args(["-KILL", pid.trim()]).status().expect("kill");
        assert!(status.success(), "kill -KILL ClickHouse {pid}");
        // Gone before the restart, so it does not race its own end.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{}", pid.trim())).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_clickhouse(&self) {
        self.services("start", "clickhouse");
    }

    fn broker_down(&self) {
        self.mock().broker_down(1).expect("broker down");
    }

    fn broker_up(&self) {
        self.mock().broker_up(1).expect("broker up");
    }

    fn restart_broker_empty(&self) {
        assert!(self.mock.is_none(), "the mock broker keeps its data; this fault needs tansu");
        self.services("restart", "tansu");
    }
}

impl Drop for OwnServices {
    fn drop(&mut self) {
        let _ = Command::new(services_sh()).args(["stop", "all"]).envs(self.env.iter().cloned()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// testkit/fake_mastodon.py in its control mode: a hashtag timeline the test fills and faults.
/// Killed on drop.
pub struct FakeMastodon {
    pub port: u16,
    child: std::process::Child,
}

impl FakeMastodon {
    pub fn start() -> FakeMastodon {
        let port = free_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testkit/fake_mastodon.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg("--control")
            .spawn()
            .expect("python3 testkit/fake_mastodon.py");
        let fake = FakeMastodon { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "fake Mastodon not listening on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        fake
    }

    fn post(&self, path: &str, body: String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let response = reqwest::blocking::Client::new().post(&url).body(body).send().expect("fake Mastodon");
        assert!(response.status().is_success(), "{url}: {}", response.status());
    }

    /// Publishes `texts` at `rate` statuses a second from now.
    pub fn add(&self, texts: &[String], rate: f64) {
        self.post("/_chaos/add", serde_json::json!({ "texts": texts, "rate": rate }).to_string());
    }

    /// `normal`, `storm` (429/503 with Retry-After) or `hang` (requests never answered).
    pub fn mode(&self, mode: &str) {
        self.post(&format!("/_chaos/mode?m={mode}"), String::new());
    }
}

impl Drop for FakeMastodon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
