//! The stages and the one shape of their entry points.
//!
//! Every stage crate exposes
//!
//! ```text
//! pub async fn run(settings: XSettings, deps: XDeps, shutdown: CancellationToken) -> Result<XStats, XError>
//! ```
//!
//! - `settings`: plain values, built from the loaded configuration by `XSettings::from_config`;
//! - `deps`: what is built outside and handed in — a loaded model, a ClickHouse writer, the author
//!   key — and always the stage's [`crate::StageHealth`];
//! - `shutdown`: cancelled when the stage must stop; it then drains (finishes or hands back what
//!   it holds, commits what is done) and returns;
//! - `XStats`: totals of the run, logged when the stage stops.
//!
//! A binary (or a test) composes any set of stages by calling their `run`s with one token each,
//! cancelling them in [`StageName::DRAIN_ORDER`].

use std::fmt;

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageName {
    Ingest,
    Analyze,
    Store,
    Alert,
    Emerging,
    Serve,
}

impl StageName {
    /// Every stage, upstream first: the order in which stages are stopped, so that each one's
    /// last output is still taken in by the stages after it (ingest stops first, store last of
    /// the pipeline; alert, emerging and serve only read ClickHouse).
    pub const DRAIN_ORDER: [StageName; 6] = [
        StageName::Ingest,
        StageName::Analyze,
        StageName::Store,
        StageName::Alert,
        StageName::Emerging,
        StageName::Serve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Ingest => "ingest",
            StageName::Analyze => "analyze",
            StageName::Store => "store",
            StageName::Alert => "alert",
            StageName::Emerging => "emerging",
            StageName::Serve => "serve",
        }
    }

    pub fn parse(s: &str) -> Option<StageName> {
        Self::DRAIN_ORDER.into_iter().find(|n| n.as_str() == s.trim())
    }

    /// The Prometheus name of this stage's `what` (`citypulse_<stage>_<what>`, `what` ending in
    /// its unit), so every stage's metrics follow one pattern by construction.
    pub fn metric(self, what: &str) -> String {
        format!("citypulse_{}_{what}", self.as_str())
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_metrics_follow_the_pattern() {
        for name in StageName::DRAIN_ORDER {
            assert_eq!(StageName::parse(name.as_str()), Some(name));
            assert_eq!(name.metric("consumer_lag_messages"), format!("citypulse_{name}_consumer_lag_messages"));
        }
        assert_eq!(StageName::parse(" store "), Some(StageName::Store));
        assert_eq!(StageName::parse("stor"), None);
        assert!(StageName::DRAIN_ORDER.windows(2).all(|w| w[0] < w[1]), "drain order is declaration order");
    }
}
