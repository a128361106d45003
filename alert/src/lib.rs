//! Alert: rules evaluated on the stored posts, seasonal robust baselines, the alert lifecycle
//! (fired → renotified → resolved, kept in ClickHouse) and the notifiers that deliver events.
//!
//! Where things happen:
//! - [`window`]: the windows of an evaluation (`[T − w, T)`, T floored to the minute) and its
//!   baseline samples (same time of week, of day, or every earlier window).
//! - [`observe`]: the ClickHouse reads: counts per key and sample, evidence posts, window texts.
//! - [`judge`]: median/MAD baselines and when each rule kind fires.
//! - [`lifecycle`]: fire once, renotify after the cooldown when worse, resolve after a window.
//! - [`engine`]: one evaluation of every rule → events.
//! - [`event`]: the event JSON (webhook body, `--format json`, `alert_events.body`).
//! - [`history`]: `alert_events` and `alert_notifications`; open alerts read back on start.
//! - [`deliver`]: webhook delivery (signature, retries, Retry-After); [`notify`]: the notifiers;
//!   [`slack`]: the Slack message of an event; [`email`]: SMTP delivery, [`mail`]: an event's
//!   e-mail; [`message`]: the headline and numbers every human-read channel shows.
//! - [`service`]: the stage (`run`) and `evaluate_once` for `citypulse alert --once`;
//!   [`backtest`]: the rules replayed over history, writing and sending nothing;
//!   [`digest`]: the day before's report e-mailed every morning.

pub mod backtest;
pub mod deliver;
pub mod digest;
pub mod email;
pub mod engine;
pub mod event;
pub mod history;
pub mod judge;
pub mod lifecycle;
pub mod mail;
pub mod message;
pub mod notify;
pub mod observe;
pub mod service;
pub mod slack;
pub mod window;

pub use event::AlertEvent;
pub use service::{evaluate_once, run, AlertDeps, AlertError, AlertSettings, AlertStats};
