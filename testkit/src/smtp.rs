//! An SMTP server on 127.0.0.1 for tests: `testkit/smtp/smtp_sink.py` (aiosmtpd, installed by
//! scripts/test-tools.sh into the venv named by `CITYPULSE_TEST_TOOLS`) run as a child process.
//! Each message it receives comes back as JSON: envelope, login, subject, Message-ID and the
//! decoded text and HTML parts.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    messages: Receiver<serde_json::Value>,
}

impl SmtpSink {
    /// Starts the sink with the script's flags (`--auth USER:PASSWORD`, `--refuse-first N`).
    /// `None` (the test skips) when the test tools are not installed, unless
    /// `CITYPULSE_REQUIRE_SERVICES` is set; then it panics.
    pub fn start(args: &[&str]) -> Option<SmtpSink> {
        let bin = crate::service_env("CITYPULSE_TEST_TOOLS")?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp/smtp_sink.py");
        let mut child = Command::new(format!("{bin}/python"))
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}/python {script}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not start (said {first:?}); is aiosmtpd in the venv?"));
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let Ok(v) = serde_json::from_str(&line) else { continue };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Some(SmtpSink { child, port, messages })
    }

    /// `127.0.0.1:<port>`, as a notifier's `smtp_server`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The next message received, waiting up to `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<serde_json::Value> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// Every message received so far (waits `settle` for stragglers).
    pub fn drain(&self, settle: Duration) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        while let Some(m) = self.next(settle) {
            all.push(m);
        }
        all
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Closing stdin ends the script; kill in case it hangs.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
