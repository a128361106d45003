//! The demo's own ClickHouse: Debian's server as a child process, configured from the same
//! template as the test services (scripts/clickhouse/), with its data and logs under
//! `demo.work_dir`. Stopped when dropped (on exit, on Ctrl-C, on error): no stray server is left.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG_TEMPLATE: &str = include_str!("../../../scripts/clickhouse/config.xml.in");
const USERS: &str = include_str!("../../../scripts/clickhouse/users.xml");

pub struct ChildClickHouse {
    child: Child,
    pub url: String,
    dir: PathBuf,
}

/// The server binary: `clickhouse-server` (Debian), else `clickhouse server` (upstream).
fn server_command() -> Result<Command> {
    for p in ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"] {
        if Path::new(p).exists() {
            return Ok(Command::new(p));
        }
    }
    if Path::new("/usr/bin/clickhouse").exists() {
        let mut c = Command::new("/usr/bin/clickhouse");
        c.arg("server");
        return Ok(c);
    }
    bail!("clickhouse-server is not installed: `make demo` installs it (apt-get install clickhouse-server)")
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl ChildClickHouse {
    /// Starts the server on `http_port` (and `http_port + 1` for the native protocol) and waits
    /// until it answers /ping.
    pub fn start(work_dir: &Path, http_port: u16) -> Result<Self> {
        let tcp_port = http_port + 1;
        for (port, key) in [(http_port, "demo.clickhouse_http_port"), (tcp_port, "demo.clickhouse_http_port + 1")] {
            if !port_free(port) {
                bail!("port {port} ({key}) is taken on 127.0.0.1: stop what listens there or change {key} in config/demo.toml");
            }
        }
        let dir = std::path::absolute(work_dir.join("clickhouse"))?;
        let (etc, data, tmp, log) = (dir.join("etc"), dir.join("data"), dir.join("tmp"), dir.join("log"));
        for d in [&etc, &data, &tmp, &log] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let config = CONFIG_TEMPLATE
            .replace("@LOG_DIR@", &log.display().to_string())
            .replace("@HTTP_PORT@", &http_port.to_string())
            .replace("@TCP_PORT@", &tcp_port.to_string())
            .replace("@INTERSERVER_PORT_ELEMENT@", "")
            .replace("@DATA_DIR@", &data.display().to_string())
            .replace("@TMP_DIR@", &tmp.display().to_string())
            .replace("@ETC_DIR@", &etc.display().to_string());
        std::fs::write(etc.join("config.xml"), config)?;
        std::fs::write(etc.join("users.xml"), USERS)?;
        let stderr = std::fs::File::create(log.join("stderr.log"))?;
        let child = server_command()?
            .arg(format!("--config-file={}", etc.join("config.xml").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting clickhouse-server")?;
        let mut server = ChildClickHouse { child, url: format!("http://127.0.0.1:{http_port}"), dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let ping = format!("{}/ping", self.url);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("clickhouse-server exited ({status}) before it answered; see {}/log/", self.dir.display());
            }
            if answers_ping(&self.url) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("clickhouse-server did not answer {ping} within 60 s; see {}/log/", self.dir.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// GET /ping over a plain socket (the binary has no blocking HTTP client, and needs none for this).
fn answers_ping(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(addr) = url.strip_prefix("http://") else { return false };
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /ping HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") && answer.trim_end().ends_with("Ok.")
}

impl Drop for ChildClickHouse {
    fn drop(&mut self) {
        // SIGTERM first, so the server flushes its parts; then make sure it is gone.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
