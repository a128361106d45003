//! Exponential backoff with jitter, per stream, and pausing a stream that keeps failing.
//!
//! Jitter spreads retries of many streams that failed together (an instance restart) so they do
//! not return in lockstep. After `pause_after` consecutive failures the stream rests for `pause`
//! and is reported; the other streams go on.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    pub wait: Duration,
    /// The stream hit `pause_after` consecutive failures and rests for the pause.
    pub paused: bool,
}

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    pause_after: u32,
    pause: Duration,
    consecutive: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, pause_after: u32, pause: Duration) -> Self {
        Backoff { initial, max: max.max(initial), pause_after: pause_after.max(1), pause, consecutive: 0 }
    }

    pub fn from_defaults(d: &schema::config::sources::SourceDefaults) -> Self {
        Backoff::new(
            Duration::from_millis(d.backoff_initial_ms),
            Duration::from_millis(d.backoff_max_ms),
            d.pause_after_failures,
            Duration::from_millis(d.pause_ms),
        )
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.consecutive
    }

    pub fn on_success(&mut self) {
        self.consecutive = 0;
    }

    /// The wait after one more failure. `hint` (Retry-After, rate-limit reset) is a floor.
    pub fn on_failure(&mut self, hint: Option<Duration>) -> Delay {
        self.consecutive += 1;
        if self.consecutive >= self.pause_after {
            self.consecutive = 0;
            return Delay { wait: self.pause.max(hint.unwrap_or_default()), paused: true };
        }
        let exp = self.consecutive.saturating_sub(1).min(31);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        // "Equal jitter": half fixed, half random, so the wait still grows with each failure.
        let half = base / 2;
        let jitter = half.mul_f64(random_unit());
        Delay { wait: (half + jitter).max(hint.unwrap_or_default()), paused: false }
    }
}

/// A random number in [0, 1) from the std hasher's random keys (no rand dependency for this).
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 6, Duration::from_secs(60))
    }

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let mut b = b();
        for (n, full) in [100u64, 200, 400, 800, 1000].into_iter().enumerate() {
            let d = b.on_failure(None);
            assert!(!d.paused, "failure {n}");
            let ms = d.wait.as_millis() as u64;
            assert!((full / 2..=full).contains(&ms), "failure {n}: {ms} ms not in [{}, {full}]", full / 2);
        }
    }

    #[test]
    fn pauses_after_consecutive_failures_and_success_resets() {
        let mut b = b();
        for _ in 0..5 {
            assert!(!b.on_failure(None).paused);
        }
        assert_eq!(b.on_failure(None), Delay { wait: Duration::from_secs(60), paused: true });
        assert_eq!(b.failures(), 0);
        b.on_failure(None);
        b.on_success();
        assert!(b.on_failure(None).wait <= Duration::from_millis(100));
    }

    #[test]
    fn server_hint_is_a_floor() {
        let mut b = b();
        assert_eq!(b.on_failure(Some(Duration::from_secs(5))).wait, Duration::from_secs(5));
    }

    #[test]
    fn jitter_varies() {
        let waits: std::collections::HashSet<_> = (0..20).map(|_| b().on_failure(None).wait).collect();
        assert!(waits.len() > 1);
    }
}
