//! One request quota per `host:port`, shared by every source and task that hits it.
//!
//! Quotas are keyed by host and port because that is what a server's rate limiter sees: two
//! sources reading the same Mastodon instance must share its budget, or adding a hashtag would
//! double the load. When several configured quotas match a host (`host` and `host:port`), the
//! strictest rate and the strictest burst win. Hosts with no configured quota get the default.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use schema::config::sources::HostQuota;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A rate in requests per second and a burst size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaSpec {
    pub requests_per_second: f64,
    pub burst: u32,
}

impl QuotaSpec {
    /// One request per second, no burst: polite to any server that has not told us otherwise.
    pub const DEFAULT: QuotaSpec = QuotaSpec { requests_per_second: 1.0, burst: 1 };

    fn stricter(self, other: QuotaSpec) -> QuotaSpec {
        QuotaSpec {
            requests_per_second: self.requests_per_second.min(other.requests_per_second),
            burst: self.burst.min(other.burst),
        }
    }

    /// The governor quota (the intake's per-channel limiter uses it too).
    pub fn quota(self) -> Quota {
        // validate() guarantees a positive finite rate; clamp anyway so a bad value cannot panic.
        let rps = if self.requests_per_second.is_finite() && self.requests_per_second > 0.0 {
            self.requests_per_second.clamp(1e-4, 1e6)
        } else {
            QuotaSpec::DEFAULT.requests_per_second
        };
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs_f64(1.0 / rps).max(Duration::from_nanos(1));
        Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
    }
}

/// The quota and the current hold of one host.
struct Host {
    limiter: DefaultDirectRateLimiter,
    /// Waiters queue here in FIFO order: governor alone lets whichever task wakes first take the
    /// next cell, which starved one of three streams sharing a host in a test.
    queue: tokio::sync::Mutex<()>,
    /// No request before this instant (Retry-After, exhausted rate-limit window).
    hold_until: Mutex<Option<Instant>>,
}

/// The registry of per-host limiters. Cheap to share: clone the `Arc`.
pub struct HostLimiters {
    configured: Vec<(String, QuotaSpec)>,
    default: QuotaSpec,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

impl std::fmt::Debug for HostLimiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLimiters").field("configured", &self.configured).field("default", &self.default).finish()
    }
}

impl HostLimiters {
    pub fn new(quotas: &[HostQuota], default: QuotaSpec) -> Arc<Self> {
        let configured = quotas
            .iter()
            .map(|q| {
                (q.host.to_ascii_lowercase(), QuotaSpec { requests_per_second: q.requests_per_second, burst: q.burst })
            })
            .collect();
        Arc::new(HostLimiters { configured, default, hosts: Mutex::new(HashMap::new()) })
    }

    /// `host:port` of a URL (the scheme's default port when none is written).
    pub fn key(url: &url::Url) -> String {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// The quota that applies to `key` (`host:port`).
    pub fn spec_for(&self, key: &str) -> QuotaSpec {
        let host = key.rsplit_once(':').map_or(key, |(h, _)| h);
        self.configured
            .iter()
            .filter(|(k, _)| k == key || k == host)
            .map(|(_, spec)| *spec)
            .reduce(QuotaSpec::stricter)
            .unwrap_or(self.default)
    }

    fn host(&self, key: &str) -> Arc<Host> {
        // A poisoned lock only means another task panicked mid-insert; the map is still usable.
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Host {
                    limiter: RateLimiter::direct(self.spec_for(key).quota()),
                    queue: tokio::sync::Mutex::new(()),
                    hold_until: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits until a request to `url`'s host is allowed, then takes one cell of its quota.
    pub async fn acquire(&self, url: &url::Url) {
        let host = self.host(&Self::key(url));
        let turn = host.queue.lock().await;
        wait_hold(&host).await;
        host.limiter.until_ready().await;
        drop(turn);
        // A hold may have been set by another task while this one waited for the quota.
        wait_hold(&host).await;
    }

    /// Keeps every request to `url`'s host back for `wait` (the longest hold wins).
    pub fn hold(&self, url: &url::Url, wait: Duration) {
        let host = self.host(&Self::key(url));
        let until = Instant::now() + wait;
        let mut hold = host.hold_until.lock().unwrap_or_else(|e| e.into_inner());
        if hold.is_none_or(|h| h < until) {
            *hold = Some(until);
        }
    }
}

async fn wait_hold(host: &Host) {
    let until = *host.hold_until.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(host: &str, rps: f64, burst: u32) -> HostQuota {
        HostQuota { host: host.into(), requests_per_second: rps, burst }
    }

    #[test]
    fn keys_are_host_and_port() {
        let k = |s: &str| HostLimiters::key(&url::Url::parse(s).unwrap());
        assert_eq!(k("https://Mastodon.Social/api/v1"), "mastodon.social:443");
        assert_eq!(k("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
    }

    #[test]
    fn strictest_configured_quota_wins() {
        let l = HostLimiters::new(
            &[quota("a.example", 2.0, 5), quota("a.example:443", 0.5, 10), quota("b.example:80", 3.0, 1)],
            QuotaSpec::DEFAULT,
        );
        assert_eq!(l.spec_for("a.example:443"), QuotaSpec { requests_per_second: 0.5, burst: 5 });
        assert_eq!(l.spec_for("a.example:8443"), QuotaSpec { requests_per_second: 2.0, burst: 5 });
        assert_eq!(l.spec_for("b.example:443"), QuotaSpec::DEFAULT);
        assert_eq!(l.spec_for("c.example:443"), QuotaSpec::DEFAULT);
    }

    #[tokio::test]
    async fn one_quota_shared_by_all_tasks_of_a_host() {
        let l = HostLimiters::new(&[quota("127.0.0.1", 10.0, 2)], QuotaSpec::DEFAULT);
        let url = url::Url::parse("http://127.0.0.1:9/").unwrap();
        let other = url::Url::parse("http://127.0.0.2:9/").unwrap();
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (l, url) = (l.clone(), url.clone());
                tokio::spawn(async move {
                    for _ in 0..3 {
                        l.acquire(&url).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 12 requests, burst 2, 10/s: the last waits for 10 refills, ~1 s.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
        // Another host has its own budget.
        let t = std::time::Instant::now();
        l.acquire(&other).await;
        assert!(t.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn holds_delay_every_caller() {
        let l = HostLimiters::new(&[], QuotaSpec { requests_per_second: 100.0, burst: 10 });
        let url = url::Url::parse("http://127.0.0.1:9/").unwrap();
        l.hold(&url, Duration::from_millis(300));
        l.hold(&url, Duration::from_millis(100)); // shorter: ignored
        let t = std::time::Instant::now();
        l.acquire(&url).await;
        assert!(t.elapsed() >= Duration::from_millis(290), "{:?}", t.elapsed());
    }
}
