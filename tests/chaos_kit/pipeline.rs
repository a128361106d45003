//! The pipeline under test as separate processes (`citypulse ingest`, `analyze` ×2, `store`,
//! `alert`), each with its own log and /healthz port, started, SIGKILLed and restarted one by one.
//! Every process is killed and reaped when the [`Pipeline`] drops: nothing is left behind, also
//! when an assertion fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The processes, in the order they start: consumers first, the ingester last.
pub const PROCESSES: [&str; 5] = ["store", "alert", "analyze-1", "analyze-2", "ingest"];

/// Partitions of each topic.
pub const PARTITIONS: i32 = 4;

/// Where the pipeline reads and writes: the Kafka brokers and the ClickHouse server.
#[derive(Debug, Clone)]
pub struct Services {
    pub brokers: String,
    pub clickhouse: String,
}

pub struct Pipeline {
    /// Database and topic prefix, unique per run.
    pub name: String,
    pub dir: PathBuf,
    pub services: Services,
    env: Vec<(String, String)>,
    ports: BTreeMap<&'static str, u16>,
    children: BTreeMap<&'static str, Child>,
    /// The crawled server of crawl cycles, started by the first one.
    pub mastodon: Option<super::services::FakeMastodon>,
}

fn stage_of(process: &str) -> &str {
    process.split('-').next().unwrap_or(process)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl Pipeline {
    /// A pipeline of its own database and topics named `name`, config copied from config/.
    pub fn new(name: &str, services: Services) -> Pipeline {
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        crate::common::copy_config_into(&dir.join("config"));
        // The shipped rules notify a webhook on 127.0.0.1:8099 too; here only the log.
        let alerts = std::fs::read_to_string(dir.join("config/alerts.toml")).expect("alerts.toml");
        let alerts = alerts.replace(r#"notify = ["comms_log", "comms_webhook"]"#, r#"notify = ["comms_log"]"#);
        std::fs::write(dir.join("config/alerts.toml"), alerts).expect("alerts.toml");
        let env = [
            ("CITYPULSE_AUTHOR_KEY", "chaos-test-key-not-secret-0123456789".to_owned()),
            ("CITYPULSE__KAFKA__BROKERS", services.brokers.clone()),
            ("CITYPULSE__KAFKA__PARTITIONS", PARTITIONS.to_string()),
            ("CITYPULSE__KAFKA__TOPIC_RAW", format!("{name}.raw")),
            ("CITYPULSE__KAFKA__TOPIC_ANALYZED", format!("{name}.analyzed")),
            ("CITYPULSE__KAFKA__TOPIC_DLQ", format!("{name}.dlq")),
            ("CITYPULSE__KAFKA__ANALYZE_GROUP", format!("{name}-analyze")),
            ("CITYPULSE__KAFKA__STORE_GROUP", format!("{name}-store")),
            // A killed consumer's partitions move to the survivor after this long.
            ("CITYPULSE__KAFKA__SESSION_TIMEOUT_MS", "6000".to_owned()),
            // The mock broker, when down, leaves connections open and silent: noticed after this.
            ("CITYPULSE__KAFKA__SOCKET_TIMEOUT_MS", "10000".to_owned()),
            ("CITYPULSE__CLICKHOUSE__URL", services.clickhouse.clone()),
            ("CITYPULSE__CLICKHOUSE__DATABASE", name.to_owned()),
            ("CITYPULSE__INGEST__STATE_DIR", dir.join("state").display().to_string()),
            ("CITYPULSE__ALERT__EVALUATE_EVERY_MS", "5000".to_owned()),
            // One model thread each: two analyzers share the machine's two cores.
            ("CITYPULSE__ANALYZE__THREADS", "1".to_owned()),
            ("CITYPULSE__ANALYZE__WORKERS", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let ports = PROCESSES.iter().map(|p| (*p, free_port())).collect();
        Pipeline { name: name.to_owned(), dir, services, env, ports, children: BTreeMap::new(), mastodon: None }
    }

    /// Points ingest at a replay file under source `source` (a fresh source each cycle, so the
    /// replay checkpoint of one cycle never skips lines of the next).
    pub fn replay(&self, source: &str, path: &Path, posts_per_second: f64) {
        let toml = format!(
            "[[replay]]\nname = \"{source}\"\npath = {:?}\nposts_per_second = {posts_per_second}\n",
            path.display().to_string()
        );
        std::fs::write(self.dir.join("config/sources.toml"), toml).expect("sources.toml");
    }

    /// Points ingest at a Mastodon hashtag timeline on 127.0.0.1:`port` (testkit/fake_mastodon.py),
    /// polled every second, with short timeouts and back-offs so that a storm or a hang passes in
    /// seconds.
    pub fn crawl(&self, port: u16) {
        let toml = format!(
            r#"[defaults]
user_agent = "citypulse-chaos/0.1 (test)"
request_timeout_ms = 3000
backoff_initial_ms = 300
backoff_max_ms = 3000
pause_after_failures = 8
pause_ms = 3000
dedup_window_posts = 100000
requests_per_second = 20.0
burst = 5

[[mastodon]]
name = "chaos_mastodon"
base_url = "http://127.0.0.1:{port}"
hashtags = ["saigon"]
poll_interval_ms = 1000
require_place = false
"#
        );
        std::fs::write(self.dir.join("config/sources.toml"), toml).expect("sources.toml");
    }

    pub fn start(&mut self, process: &'static str) {
        let port = self.ports[process];
        let stage = stage_of(process);
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(process)).expect("process log");
        let child = Command::new(env!("CARGO_BIN_EXE_citypulse"))
            .arg("--config")
            .arg(self.dir.join("config"))
            .arg(stage)
            .envs(self.env.iter().cloned())
            .env(format!("CITYPULSE__{}__METRICS_PORT", stage.to_uppercase()), port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn citypulse");
        self.children.insert(process, child);
    }

    /// SIGKILL: no drain, no commit, no goodbye.
    pub fn kill9(&mut self, process: &'static str) {
        if let Some(mut child) = self.children.remove(process) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self, process: &'static str) {
        self.kill9(process);
        self.start(process);
    }

    /// Whether `process` is running (ingest exits by itself at the end of its replay file).
    pub fn running(&mut self, process: &'static str) -> bool {
        self.children.get_mut(process).is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The processes that died although nobody killed them, with how they ended; ingest may end,
    /// but only with success (at the end of its replay file).
    pub fn crashed(&mut self) -> Vec<String> {
        let mut dead = Vec::new();
        for p in PROCESSES {
            match self.children.get_mut(p).map(Child::try_wait) {
                Some(Ok(None)) => {}
                Some(Ok(Some(status))) if p == "ingest" && status.success() => {}
                Some(Ok(Some(status))) => dead.push(format!("{p} ({status})")),
                Some(Err(e)) => dead.push(format!("{p} ({e})")),
                None => dead.push(format!("{p} (not started)")),
            }
        }
        dead
    }

    /// Waits until `process` answers /healthz with 200.
    pub fn wait_healthy(&mut self, process: &'static str, within: Duration) {
        let deadline = Instant::now() + within;
        let url = format!("http://127.0.0.1:{}/healthz", self.ports[process]);
        loop {
            if reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(self.running(process), "{process} exited; its log:\n{}", self.tail(process));
            assert!(Instant::now() < deadline, "{process} not healthy in {within:?}; its log:\n{}", self.tail(process));
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn log_path(&self, process: &str) -> PathBuf {
        self.dir.join(format!("{process}.log"))
    }

    pub fn log(&self, process: &str) -> String {
        std::fs::read_to_string(self.log_path(process)).unwrap_or_default()
    }

    /// The last lines of every process's log (for a failed assertion).
    pub fn tail(&self, process: &str) -> String {
        let log = self.log(process);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    pub fn tails(&self) -> String {
        PROCESSES.iter().map(|p| format!("--- {p}\n{}", self.tail(p))).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for p in PROCESSES {
            self.kill9(p);
        }
    }
}
