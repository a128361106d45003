//! `make chaos` and its short form in `make test` (tests/chaos.rs): the pipeline as separate
//! processes, a stream of known posts per cycle, faults during the stream, and after every cycle
//! the check of [`check::settle_and_check`].

pub mod check;
pub mod faults;
pub mod pipeline;

use check::Expected;
use faults::{apply, stream_file, Fault, ServiceControl};
use pipeline::Pipeline;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Posts per cycle and their replay rate: a 10 s stream the faults land in.
pub const POSTS_PER_CYCLE: usize = 150;
pub const POSTS_PER_SECOND: f64 = 15.0;
/// Model load, group joins and a rebalance after a SIGKILL (session timeout 6 s), on a slow machine.
pub const SETTLE: Duration = Duration::from_secs(180);

/// A chaos run: the pipeline and what it must hold.
pub struct Run {
    pub pipeline: Pipeline,
    pub expected: Expected,
    /// The run's own services, when it has them (the faults that take services down need them).
    pub own: Option<OwnServices>,
}

impl Run {
    pub fn start(pipeline: Pipeline, expected: Expected, own: Option<OwnServices>) -> Run {
        let mut run = Run { pipeline, expected, own };
        let p = &mut run.pipeline;
        let migrate = Command::new(env!("CARGO_BIN_EXE_citypulse"))
            .arg("--config")
            .arg(p.dir.join("config"))
            .arg("migrate")
            .env("CITYPULSE__CLICKHOUSE__URL", &p.services.clickhouse)
            .env("CITYPULSE__CLICKHOUSE__DATABASE", &p.name)
            .output()
            .expect("citypulse migrate");
        assert!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));
        // ingest starts with each cycle's stream; the consumers now, and wait until they serve.
        for process in ["store", "alert", "analyze-1", "analyze-2"] {
            p.start(process);
        }
        for process in ["store", "alert", "analyze-1", "analyze-2"] {
            p.wait_healthy(process, SETTLE);
        }
        run
    }

    /// One cycle: a fresh stream of known posts, `faults` at their offsets into it, then the check.
    pub fn cycle(&mut self, cycle: usize, faults: &[(Duration, Fault)]) -> Result<(), String> {
        let started = Instant::now();
        let p = &mut self.pipeline;
        let file = stream_file(&p.dir, cycle, POSTS_PER_CYCLE);
        p.replay(&format!("chaos_{cycle}"), &file, POSTS_PER_SECOND);
        p.restart("ingest");
        for (at, fault) in faults {
            std::thread::sleep(at.saturating_sub(started.elapsed()));
            eprintln!("chaos: cycle {cycle}: {fault} (at {:.1} s)", started.elapsed().as_secs_f64());
            let own = self.own.as_ref().map(|c| c as &dyn ServiceControl);
            apply(*fault, p, &mut self.expected, own);
        }
        self.expected.posts += POSTS_PER_CYCLE as u64;
        let result = check::settle_and_check(p, &self.expected, SETTLE);
        eprintln!(
            "chaos: cycle {cycle}: {} in {:.1} s",
            if result.is_ok() { "clean" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        result.map_err(|e| format!("cycle {cycle}: {e}\n{}", p.tails()))
    }
}

/// The services of a chaos run of its own, so that killing them hurts no other test: a ClickHouse
/// (scripts/services.sh, own folder and ports) and a Kafka broker that can go down and come back
/// with its data: librdkafka's mock cluster, hosted in this test process and reached by the
/// pipeline's processes over TCP (tansu from PyPI keeps data only in memory). Stopped on drop.
pub struct OwnServices {
    dir: PathBuf,
    env: Vec<(String, String)>,
    pub clickhouse_url: String,
    pub brokers: String,
    kafka: MockCluster<'static, DefaultProducerContext>,
}

fn services_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

impl OwnServices {
    /// Starts them, with the topics of pipeline `name`.
    pub fn start(dir: PathBuf, name: &str) -> OwnServices {
        let (http, tcp) = (free_port(), free_port());
        let env: Vec<(String, String)> = [
            ("CITYPULSE_SERVICES_DIR", dir.display().to_string()),
            ("CITYPULSE_CH_HTTP_PORT", http.to_string()),
            ("CITYPULSE_CH_TCP_PORT", tcp.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let kafka = MockCluster::new(1).expect("mock cluster");
        for topic in ["raw", "analyzed", "dlq"] {
            kafka.create_topic(&format!("{name}.{topic}"), pipeline::PARTITIONS, 1).expect("create topic");
        }
        let own = OwnServices {
            dir,
            env,
            clickhouse_url: format!("http://127.0.0.1:{http}"),
            brokers: kafka.bootstrap_servers(),
            kafka,
        };
        own.clickhouse("start");
        own
    }

    fn clickhouse(&self, action: &str) {
        let status = Command::new(services_sh())
            .args([action, "clickhouse"])
            .envs(self.env.iter().cloned())
            .status()
            .expect("scripts/services.sh");
        assert!(status.success(), "services.sh {action} clickhouse failed");
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
        self.clickhouse("start");
    }

    fn broker_down(&self) {
        self.kafka.broker_down(1).expect("broker down");
    }

    fn broker_up(&self) {
        self.kafka.broker_up(1).expect("broker up");
    }
}

impl Drop for OwnServices {
    fn drop(&mut self) {
        let _ = Command::new(services_sh()).args(["stop", "clickhouse"]).envs(self.env.iter().cloned()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// splitmix64: the cycles' random choices, reproducible from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The faults of randomized cycle `cycle` of run `seed`: one or two, at 1–8 s into the stream
/// (ClickHouse and the broker going down only on services of the run's own).
pub fn random_faults(seed: u64, cycle: usize, own_services: bool) -> Vec<(Duration, Fault)> {
    let mut rng = Rng(seed ^ (cycle as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let count = 1 + rng.below(2);
    let mut faults: Vec<(Duration, Fault)> = (0..count)
        .map(|_| {
            let at = Duration::from_millis(1000 + rng.below(7000));
            let after = Duration::from_millis(500 + rng.below(3000));
            let kill = |process| Fault::Kill { process, after };
            let pick = rng.below(if own_services { 9 } else { 7 });
            let fault = match pick {
                0 => kill("analyze-1"),
                1 => kill("analyze-2"),
                2 => kill("store"),
                3 => kill("ingest"),
                4 => kill("alert"),
                5 => Fault::Poison,
                6 => Fault::DetachPosts { for_: Duration::from_secs(5 + rng.below(16)) },
                7 => Fault::ClickHouseDown { for_: Duration::from_secs(10 + rng.below(21)) },
                _ => Fault::BrokerDown { for_: Duration::from_secs(10 + rng.below(21)) },
            };
            (at, fault)
        })
        .collect();
    faults.sort_by_key(|(at, _)| *at);
    faults
}
