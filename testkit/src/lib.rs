//! Helpers shared by the workspace's tests that talk to real services (started by `make test` via
//! scripts/services.sh, which exports their addresses). A dev-dependency only.
//!
//! [`proxy`]: a fault-injecting proxy to put in front of ClickHouse's HTTP port.
//! [`kafka`]: a consumer group's committed offsets and the partitions' ends, asked without joining.
//! [`smtp`]: an SMTP server (aiosmtpd) on 127.0.0.1 that hands back what it received.

pub mod kafka;
pub mod proxy;
pub mod smtp;

/// The address of a service from the environment. When the variable is unset the test is skipped,
/// unless `CITYPULSE_REQUIRE_SERVICES` is set (as `make test` and CI do): then a missing service is
/// a failure, so the suite cannot pass by silently skipping.
pub fn service_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CITYPULSE_REQUIRE_SERVICES").is_some() => {
            panic!("{var} is not set but CITYPULSE_REQUIRE_SERVICES is: start the services (scripts/services.sh start)")
        }
        _ => {
            eprintln!("skipped: {var} not set (run through `make test` to start the services)");
            None
        }
    }
}

/// ClickHouse's HTTP address for tests (`CITYPULSE_TEST_CLICKHOUSE_URL`).
pub fn clickhouse_url() -> Option<String> {
    service_env("CITYPULSE_TEST_CLICKHOUSE_URL")
}

/// The two-replica ClickHouse cluster of scripts/cluster.sh (`CITYPULSE_TEST_CLUSTER*`).
#[derive(Debug, Clone)]
pub struct TestCluster {
    /// The cluster's name in remote_servers.
    pub name: String,
    /// Each replica's HTTP address; the first is the one tests write through.
    pub urls: Vec<String>,
    /// Each replica's pid file, in the same order.
    pub pid_files: Vec<std::path::PathBuf>,
    /// A shell command that starts whatever part of the cluster is not running.
    pub start: String,
}

pub fn cluster() -> Option<TestCluster> {
    let name = service_env("CITYPULSE_TEST_CLUSTER")?;
    let words = |var: &str| -> Vec<String> {
        std::env::var(var).unwrap_or_default().split_whitespace().map(str::to_owned).collect()
    };
    let cluster = TestCluster {
        name,
        urls: words("CITYPULSE_TEST_CLUSTER_URLS"),
        pid_files: words("CITYPULSE_TEST_CLUSTER_PIDS").into_iter().map(Into::into).collect(),
        start: std::env::var("CITYPULSE_TEST_CLUSTER_START").unwrap_or_default(),
    };
    assert!(
        cluster.urls.len() >= 2 && cluster.pid_files.len() == cluster.urls.len() && !cluster.start.trim().is_empty(),
        "CITYPULSE_TEST_CLUSTER_URLS, _PIDS and _START must name every replica and how to start them \
         (eval \"$(scripts/cluster.sh env)\"): {cluster:?}"
    );
    Some(cluster)
}

/// The tansu broker for tests (`CITYPULSE_TEST_KAFKA_BROKERS`).
pub fn kafka_brokers() -> Option<String> {
    service_env("CITYPULSE_TEST_KAFKA_BROKERS")
}

/// A name unique to this test run, so tests never see each other's tables or topics.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// A xorshift generator for made-up embeddings in tests and benchmarks: deterministic and fast;
/// directions need spread, not statistical quality.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next value, uniform in [-0.5, 0.5).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    /// `dims` values of [`Xorshift::next_f32`]: a random direction once normalised.
    pub fn vector(&mut self, dims: usize) -> Vec<f32> {
        (0..dims).map(|_| self.next_f32()).collect()
    }
}
