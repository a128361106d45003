//! Politeness: how often a host may be asked, and how long to wait after it said no.
//!
//! - [`limiter`]: [`HostLimiters`], one governor quota per `host:port` shared by every source and
//!   task (the strictest configured quota wins), plus holds set by `Retry-After` and exhausted
//!   rate-limit headers, which every source hitting that host then respects.
//! - [`headers`]: reading `Retry-After` (seconds or HTTP-date) and `X-RateLimit-*` / `X-Ratelimit-*`.
//! - [`backoff`]: exponential backoff with jitter per stream, and pausing a stream that keeps failing.

pub mod backoff;
pub mod headers;
pub mod limiter;

pub use backoff::{Backoff, Delay};
pub use limiter::{HostLimiters, QuotaSpec};
