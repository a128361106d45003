//! `citypulse alert backtest`: the evaluations and the lifecycle replayed over stored history,
//! every `step` from `since` to `until`, with the state in memory: nothing is written or sent. It
//! shows what would have fired and how often each rule would have paged, so thresholds can be tuned
//! before a rule is turned on.

use crate::event::AlertEvent;
use crate::lifecycle::OpenAlerts;
use crate::service::{AlertError, AlertSettings};
use chrono::{DateTime, Duration, Utc};
use clickhouse::Client;

/// Every event the rules would have raised from `since` to `until`, in time order. `progress` is
/// told each evaluation time (long ranges take a while).
pub async fn backtest(
    settings: &AlertSettings,
    client: Client,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    step: Duration,
    progress: &mut dyn FnMut(DateTime<Utc>),
) -> Result<Vec<AlertEvent>, AlertError> {
    let mut engine = crate::service::engine(settings, client)?;
    let mut open = OpenAlerts::new();
    let mut events = Vec::new();
    let mut at = since;
    while at <= until {
        progress(at);
        events.extend(engine.evaluate(at, &mut open).await?);
        at += step;
    }
    Ok(events)
}

/// Pages (fired and renotified events) per rule, every configured rule listed.
pub fn pages_per_rule<'a>(settings: &'a AlertSettings, events: &[AlertEvent]) -> Vec<(&'a str, usize, usize)> {
    settings
        .rules
        .iter()
        .map(|r| {
            let of = |kind: &str| events.iter().filter(|e| e.rule == r.name && e.event == kind).count();
            (r.name.as_str(), of("fired") + of("renotified"), of("resolved"))
        })
        .collect()
}
