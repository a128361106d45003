//! The alert history in ClickHouse (migration 005): `alert_events`, one row per event with its
//! JSON, and `alert_notifications`, one row per delivery attempt. The engine's state is read back
//! from here on start, so a restart neither fires an open alert again nor forgets a delivery.

use crate::deliver::Attempt;
use crate::event::AlertEvent;
use crate::lifecycle::{OpenAlert, OpenAlerts};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use store::{ClickHouseError, Database};

#[derive(Debug, Clone)]
pub struct History {
    client: Client,
    db: Database,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct EventRow {
    event_id: String,
    alert_id: String,
    event: String,
    state: String,
    rule: String,
    kind: String,
    severity: String,
    topic: String,
    place: String,
    observed: f64,
    evaluated_at: u32,
    fired_at: u32,
    body: String,
}

#[derive(Debug, Row, Serialize)]
struct HeldRow {
    alert_id: String,
    held_at: u32,
}

#[derive(Debug, Row, Serialize)]
struct NotificationRow<'a> {
    event_id: &'a str,
    alert_id: &'a str,
    notifier: &'a str,
    attempt: u32,
    outcome: &'a str,
    http_status: Option<u16>,
    error: &'a str,
    at: u32,
}

/// A delivery that has not finished (neither delivered nor failed).
#[derive(Debug, Clone)]
pub struct Pending {
    pub event: AlertEvent,
    pub notifier: String,
    /// Attempts already made.
    pub attempts: u32,
}

fn secs(t: i64) -> u32 {
    u32::try_from(t.max(0)).unwrap_or(u32::MAX)
}

impl History {
    pub fn new(client: Client, db: Database) -> Self {
        History { client, db }
    }

    /// Inserts name their table alone (the crate quotes `db.table` as one name).
    fn table_client(&self) -> Client {
        self.client.clone().with_database(self.db.as_str())
    }

    pub async fn record_event(&self, e: &AlertEvent) -> Result<(), ClickHouseError> {
        let row = EventRow {
            event_id: e.event_id.clone(),
            alert_id: e.alert_id.clone(),
            event: e.event.clone(),
            state: e.state.clone(),
            rule: e.rule.clone(),
            kind: e.kind.clone(),
            severity: e.severity.clone(),
            topic: e.topic.clone(),
            place: e.place.clone(),
            observed: e.observed,
            evaluated_at: secs(e.window.end.timestamp()),
            fired_at: secs(e.fired_at.timestamp()),
            body: serde_json::to_string(e).unwrap_or_default(),
        };
        let fail = |e| ClickHouseError::new("recording an alert event", e);
        let mut insert = self.table_client().insert::<EventRow>("alert_events").await.map_err(fail)?;
        insert.write(&row).await.map_err(fail)?;
        insert.end().await.map_err(fail)
    }

    pub async fn record_attempt(&self, e: &AlertEvent, notifier: &str, a: &Attempt) -> Result<(), ClickHouseError> {
        self.record_attempt_of(&e.event_id, &e.alert_id, notifier, a).await
    }

    /// Records an attempt of a delivery that is no alert event (the daily digest).
    pub async fn record_attempt_of(
        &self,
        event_id: &str,
        alert_id: &str,
        notifier: &str,
        a: &Attempt,
    ) -> Result<(), ClickHouseError> {
        let row = NotificationRow {
            event_id,
            alert_id,
            notifier,
            attempt: a.attempt,
            outcome: a.outcome.as_str(),
            http_status: a.http_status,
            error: a.error.as_deref().unwrap_or_default(),
            at: secs(a.at.timestamp()),
        };
        let fail = |e| ClickHouseError::new("recording a delivery attempt", e);
        let mut insert =
            self.table_client().insert::<NotificationRow<'_>>("alert_notifications").await.map_err(fail)?;
        insert.write(&row).await.map_err(fail)?;
        insert.end().await.map_err(fail)
    }

    /// Per notifier, the attempts made on delivery `event_id` and whether it finished
    /// (delivered or failed for good).
    pub async fn attempts_of(&self, event_id: &str) -> Result<HashMap<String, (u32, bool)>, ClickHouseError> {
        let rows: Vec<(String, u32, u64)> = self
            .client
            .query(&format!(
                "SELECT notifier, max(attempt), countIf(outcome != 'retrying') FROM {}.alert_notifications \
                 WHERE event_id = ? GROUP BY notifier",
                self.db
            ))
            .bind(event_id)
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("reading delivery attempts", e))?;
        Ok(rows.into_iter().map(|(n, made, finished)| (n, (made, finished > 0))).collect())
    }

    /// Notes that the open alerts `alert_ids` held at `t` (unix seconds).
    pub async fn record_held(&self, alert_ids: &[String], t: i64) -> Result<(), ClickHouseError> {
        if alert_ids.is_empty() {
            return Ok(());
        }
        let fail = |e| ClickHouseError::new("recording held alerts", e);
        let mut insert = self.table_client().insert::<HeldRow>("alert_held").await.map_err(fail)?;
        for id in alert_ids {
            insert.write(&HeldRow { alert_id: id.clone(), held_at: secs(t) }).await.map_err(fail)?;
        }
        insert.end().await.map_err(fail)
    }

    /// Every event of the alerts that have not resolved, oldest first.
    async fn open_events(&self) -> Result<Vec<AlertEvent>, ClickHouseError> {
        let bodies: Vec<String> = self
            .client
            .query(&format!(
                "SELECT body FROM {db}.alert_events FINAL WHERE alert_id IN \
                 (SELECT alert_id FROM {db}.alert_events GROUP BY alert_id HAVING countIf(event = 'resolved') = 0) \
                 ORDER BY evaluated_at",
                db = self.db
            ))
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("reading open alerts", e))?;
        Ok(bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect())
    }

    /// The open alerts by key, as their events left them.
    pub async fn open_alerts(&self) -> Result<OpenAlerts, ClickHouseError> {
        let mut by_alert: BTreeMap<String, Vec<AlertEvent>> = BTreeMap::new();
        for e in self.open_events().await? {
            by_alert.entry(e.alert_id.clone()).or_default().push(e);
        }
        let held: HashMap<String, i64> = self
            .client
            .query(&format!("SELECT alert_id, toInt64(max(held_at)) FROM {}.alert_held GROUP BY alert_id", self.db))
            .fetch_all::<(String, i64)>()
            .await
            .map_err(|e| ClickHouseError::new("reading when open alerts last held", e))?
            .into_iter()
            .collect();
        let mut open = OpenAlerts::new();
        for events in by_alert.values() {
            if let (Some(first), Some(mut o)) = (events.first(), OpenAlert::from_events(events)) {
                o.held_at = o.held_at.max(held.get(&o.alert_id).copied().unwrap_or(0));
                open.insert((first.rule.clone(), first.topic.clone(), first.place.clone()), o);
            }
        }
        Ok(open)
    }

    /// Deliveries of events since `since` (unix seconds) to `notifiers_of(rule)` that neither
    /// succeeded nor failed for good: a crash or shutdown interrupted them.
    pub async fn pending(
        &self,
        since: i64,
        notifiers_of: impl Fn(&str) -> Vec<String>,
    ) -> Result<Vec<Pending>, ClickHouseError> {
        let bodies: Vec<String> = self
            .client
            .query(&format!(
                "SELECT body FROM {}.alert_events FINAL WHERE evaluated_at >= toDateTime(?) ORDER BY evaluated_at",
                self.db
            ))
            .bind(secs(since))
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("reading recent alert events", e))?;
        let done: Vec<(String, String, u32, u64)> = self
            .client
            .query(&format!(
                "SELECT event_id, notifier, max(attempt), countIf(outcome != 'retrying') \
                 FROM {}.alert_notifications WHERE at >= toDateTime(?) GROUP BY event_id, notifier",
                self.db
            ))
            .bind(secs(since))
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("reading delivery attempts", e))?;
        let attempts: HashMap<(String, String), (u32, bool)> =
            done.into_iter().map(|(e, n, a, finished)| ((e, n), (a, finished > 0))).collect();
        let mut pending = Vec::new();
        for event in bodies.iter().filter_map(|b| serde_json::from_str::<AlertEvent>(b).ok()) {
            for notifier in notifiers_of(&event.rule) {
                match attempts.get(&(event.event_id.clone(), notifier.clone())) {
                    Some((_, true)) => {}
                    Some((n, false)) => pending.push(Pending { event: event.clone(), notifier, attempts: *n }),
                    None => pending.push(Pending { event: event.clone(), notifier, attempts: 0 }),
                }
            }
        }
        Ok(pending)
    }

    /// Alerts fired since `since`, newest first, with their latest state and delivery outcomes.
    pub async fn list(&self, since: i64) -> Result<Vec<AlertSummary>, ClickHouseError> {
        let sql = format!(
            "SELECT alert_id, any(rule), any(kind), any(topic), any(place), \
             argMax(state, (evaluated_at, event = 'resolved')), \
             argMax(severity, (evaluated_at, event = 'resolved')), \
             max(observed), toInt64(min(fired_at)) AS first_fired, \
             toInt64(maxIf(evaluated_at, event = 'resolved')), count(), \
             argMaxIf(body, evaluated_at, event != 'resolved') \
             FROM {db}.alert_events FINAL WHERE fired_at >= toDateTime(?) \
             GROUP BY alert_id ORDER BY first_fired DESC, alert_id",
            db = self.db
        );
        let rows: Vec<SummaryRow> = self
            .client
            .query(&sql)
            .bind(secs(since))
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("reading the alert history", e))?;
        let outcomes: Vec<(String, String, u64)> = self
            .client
            .query(&format!(
                "SELECT alert_id, outcome, count() FROM \
                 (SELECT alert_id, event_id, notifier, argMax(outcome, attempt) AS outcome \
                  FROM {}.alert_notifications WHERE at >= toDateTime(?) GROUP BY alert_id, event_id, notifier) \
                 GROUP BY alert_id, outcome",
                self.db
            ))
            .bind(secs(since))
            .fetch_all()
            .await
            .map_err(|e| ClickHouseError::new("reading delivery outcomes", e))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let deliveries =
                    outcomes.iter().filter(|(a, _, _)| *a == row.alert_id).map(|(_, o, n)| (o.clone(), *n)).collect();
                let last: Option<AlertEvent> = serde_json::from_str(&row.last_body).ok();
                let (evidence, window, observed) = match last {
                    Some(e) => (e.evidence, Some(e.window), Some(e.observed)),
                    None => (Vec::new(), None, None),
                };
                AlertSummary { row, deliveries, evidence, window, last_observed: observed }
            })
            .collect())
    }
}

/// One alert in `citypulse alert history`.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSummary {
    #[serde(flatten)]
    pub row: SummaryRow,
    /// Deliveries by their latest outcome (`delivered`, `retrying`, `failed`).
    pub deliveries: BTreeMap<String, u64>,
    /// The evidence, window and value of its last fired or renotified event.
    pub evidence: Vec<crate::event::Evidence>,
    pub window: Option<crate::event::Span>,
    pub last_observed: Option<f64>,
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct SummaryRow {
    pub alert_id: String,
    pub rule: String,
    pub kind: String,
    pub topic: String,
    pub place: String,
    pub state: String,
    pub severity: String,
    /// The largest observed value over its events.
    pub peak: f64,
    pub fired_at: i64,
    /// 0 while firing.
    pub resolved_at: i64,
    pub events: u64,
    /// The JSON of the last fired or renotified event (read into the summary's evidence).
    #[serde(skip_serializing)]
    pub last_body: String,
}
