//! A child process of the citypulse binary for end-to-end tests: its output kept, waits with
//! deadlines, killed when dropped (its last lines printed on a failed assertion); and the small
//! helpers those tests share (a free port, a bare HTTP GET, the one-pipeline-at-a-time lock).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether the model and heads are fetched; a skip is a failure under CITYPULSE_REQUIRE_MODEL.
pub fn model_ready() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = root.join("models/multilingual-e5-small/model.safetensors").exists()
        && root.join("models/heads/sentiment/head.json").exists();
    if !ok {
        assert!(std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(), "model or heads missing");
        eprintln!("skipped: model not fetched (scripts/fetch-model.sh)");
    }
    ok
}

/// `citypulse --config DIR <args>`, run from the workspace (for `models/`) with only the test's
/// own settings: no inherited `CITYPULSE__*`, `CITYPULSE_CONFIG` or `RUST_LOG` may point it elsewhere.
pub fn citypulse(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citypulse"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).arg("--config").arg(config).args(args);
    for (var, _) in std::env::vars_os() {
        if var.to_str().is_some_and(|v| v.starts_with("CITYPULSE__") || v == "CITYPULSE_CONFIG" || v == "RUST_LOG") {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Runs `cmd` to its end with `input` on its stdin; stdout and stderr are kept.
pub fn output_with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A port nobody listens on right now (bound, then released for the child).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// `GET path` on 127.0.0.1:port (HTTP/1.0: no chunking, the server closes): (status, body).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status: {head}"))?;
    Ok((status, body.to_owned()))
}

/// A running citypulse child (`run`, `serve`, `import`…), killed when dropped; its stdout and stderr lines are kept.
pub struct Running {
    pub label: String,
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    pub status: Option<ExitStatus>,
}

impl Running {
    pub fn spawn(mut cmd: Command, label: &str) -> Running {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn citypulse");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        let readers = [("out", stdout), ("err", stderr)]
            .into_iter()
            .map(|(stream, pipe)| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                        let line = strip_ansi(&String::from_utf8_lossy(&line));
                        let prefix = if stream == "out" { "[stdout] " } else { "" };
                        log.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{prefix}{line}"));
                    }
                })
            })
            .collect();
        eprintln!("{label}: started citypulse (pid {})", child.id());
        Running { label: label.to_owned(), child, log, readers, status: None }
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    pub fn assert_alive(&mut self, what: &str) {
        if let Some(status) = self.exited() {
            self.join_readers();
            panic!("{}: citypulse exited ({status}) while {what}", self.label);
        }
    }

    /// Polls `probe` every 500 ms until it gives a value; fails at the deadline (with the probe's
    /// last answer) or as soon as the child exits.
    pub fn wait_for<T>(&mut self, what: &str, deadline: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
        let started = Instant::now();
        loop {
            let last = match probe() {
                Ok(value) => return value,
                Err(state) => state,
            };
            self.assert_alive(&format!("waiting for {what} (last: {last})"));
            assert!(
                started.elapsed() < deadline,
                "{}: no {what} within {} s; last: {last}",
                self.label,
                deadline.as_secs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "kill -{signal} {}: {status:?}", self.child.id());
    }

    /// Waits for the exit (the child is killed at the deadline) and for its output to be read.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let started = Instant::now();
        while self.exited().is_none() {
            if started.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{}: citypulse did not exit within {} s", self.label, deadline.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.join_readers();
        eprintln!(
            "{}: exited ({}) {:.1} s after the signal",
            self.label,
            self.status.expect("exited"),
            started.elapsed().as_secs_f64()
        );
        self.status.expect("exited")
    }

    /// Joins the output readers (they end at EOF once the child is gone), for at most 5 s.
    pub fn join_readers(&mut self) {
        let started = Instant::now();
        while self.readers.iter().any(|r| !r.is_finished()) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for reader in std::mem::take(&mut self.readers) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.join_readers();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} (pid {}): last lines of its log -----\n{}\n-----",
                self.label,
                self.child.id(),
                self.tail(80)
            );
        }
    }
}

/// Removes ANSI escape sequences (colours), in case the logger writes them into the pipe.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One pipeline at a time (each runs the encoder on both cores), across processes too: nextest
/// runs every test in a process of its own. The lock is a Linux abstract Unix socket, which the
/// kernel releases when its holder exits, however it exits.
#[cfg(target_os = "linux")]
pub fn serial() -> std::os::unix::net::UnixListener {
    use std::os::linux::net::SocketAddrExt;
    let name = std::os::unix::net::SocketAddr::from_abstract_name(b"citypulse-tests-run-cli").expect("socket name");
    let started = Instant::now();
    loop {
        match std::os::unix::net::UnixListener::bind_addr(&name) {
            Ok(lock) => return lock,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && started.elapsed() < Duration::from_secs(900) => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("waiting for the other pipeline tests to finish: {e}"),
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
