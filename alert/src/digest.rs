//! The daily digest: the day before's report, e-mailed each morning at `[digest].time` in the
//! city's zone through the `[digest].notify` email notifiers.
//!
//! The report itself is rendered by the caller (the binary owns the report), handed in as a
//! [`RenderDigest`]. Each send is recorded in `alert_notifications` under the event id
//! `digest-YYYY-MM-DD` (alert id `digest`), so a restart neither sends a digest twice nor loses
//! one: on start, a digest that fell due earlier the same day and was not finished is sent then.
//! Only that day's is caught up: a digest of an older day, sent late, is no longer news.

use crate::deliver::Attempt;
use crate::history::History;
use crate::mail::Mail;
use crate::notify::Notifiers;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use store::ClickHouseError;
use tokio_util::sync::CancellationToken;

/// Renders the digest mail of one day; the error says why it could not be built.
pub type RenderDigest =
    Arc<dyn Fn(NaiveDate) -> Pin<Box<dyn Future<Output = Result<Mail, String>> + Send>> + Send + Sync>;

/// The alert id digest sends are recorded under.
pub const DIGEST_ALERT_ID: &str = "digest";

/// How long to wait before trying again when the report could not be built or recorded
/// (ClickHouse away).
const RETRY_AFTER: Duration = Duration::from_secs(300);

/// When and where the digest goes.
#[derive(Debug, Clone)]
pub struct DigestPlan {
    pub time: NaiveTime,
    pub notify: Vec<String>,
    pub tz: Tz,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("building the digest of {date}: {reason}")]
    Render { date: NaiveDate, reason: String },
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

/// The event id a day's digest is recorded under.
pub fn event_id(date: NaiveDate) -> String {
    format!("digest-{date}")
}

impl DigestPlan {
    /// The day whose digest is due at `now` (the day before, once today's time has come) and
    /// when the next one falls due.
    pub fn due(&self, now: DateTime<Utc>) -> (Option<NaiveDate>, DateTime<Utc>) {
        let today = now.with_timezone(&self.tz).date_naive();
        let at = |d: NaiveDate| {
            // A time skipped by a clock change falls to the first instant after it.
            let mut t = d.and_time(self.time);
            loop {
                if let Some(x) = self.tz.from_local_datetime(&t).earliest() {
                    return x.to_utc();
                }
                t += chrono::Duration::minutes(1);
            }
        };
        let due_today = at(today);
        if now >= due_today {
            (today.pred_opt(), at(today + chrono::Duration::days(1)))
        } else {
            (None, due_today)
        }
    }
}

/// Sends the digest of `date` through every planned notifier that has not finished it yet
/// (`force`: through every one, as `citypulse alert digest` does). Returns each notifier's
/// attempts; empty when nothing was owed.
pub async fn send(
    plan: &DigestPlan,
    date: NaiveDate,
    force: bool,
    render: &RenderDigest,
    notifiers: &Notifiers,
    history: &History,
    shutdown: &CancellationToken,
) -> Result<Vec<(String, Vec<Attempt>)>, DigestError> {
    let id = event_id(date);
    let done = history.attempts_of(&id).await?;
    let owed: Vec<(&String, u32)> = plan
        .notify
        .iter()
        .filter_map(|n| match done.get(n) {
            _ if force => Some((n, 0)),
            Some((_, true)) => None,
            Some((made, false)) => Some((n, *made)),
            None => Some((n, 0)),
        })
        .collect();
    if owed.is_empty() {
        return Ok(Vec::new());
    }
    let mut mail = render(date).await.map_err(|reason| DigestError::Render { date, reason })?;
    if force {
        // A deliberate resend must not be folded into the first by the reader's mail client.
        mail.id = format!("{}.resent-{}", mail.id, Utc::now().timestamp());
    }
    let mut sent = Vec::new();
    for (notifier, made) in owed {
        let attempts = notifiers.send_mail(&mail, notifier, made, shutdown).await.unwrap_or_default();
        for a in &attempts {
            history.record_attempt_of(&id, DIGEST_ALERT_ID, notifier, a).await?;
        }
        sent.push((notifier.clone(), attempts));
    }
    Ok(sent)
}

/// The digest loop of the alert stage: sends what is due, sleeps until the next, until `shutdown`.
pub async fn run(
    plan: DigestPlan,
    render: RenderDigest,
    notifiers: Notifiers,
    history: History,
    shutdown: CancellationToken,
) {
    tracing::info!(time = %plan.time, notify = ?plan.notify, "daily digest scheduled");
    loop {
        let (due, next) = plan.due(Utc::now());
        let mut wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if let Some(date) = due {
            match send(&plan, date, false, &render, &notifiers, &history, &shutdown).await {
                Ok(sent) => {
                    for (notifier, attempts) in sent {
                        let outcome = attempts.last().map_or("not sent", |a| a.outcome.as_str());
                        tracing::info!(%date, notifier, outcome, "daily digest");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "daily digest not sent; trying again in 5 minutes");
                    wait = wait.min(RETRY_AFTER);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_the_day_before_once_the_time_has_come() {
        let tz: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let plan = DigestPlan { time: NaiveTime::from_hms_opt(7, 30, 0).unwrap(), notify: vec![], tz };
        // 07:29 in Saigon (00:29 UTC): nothing due yet; next at 07:30 local.
        let before = Utc.with_ymd_and_hms(2026, 12, 3, 0, 29, 0).unwrap();
        assert_eq!(plan.due(before), (None, Utc.with_ymd_and_hms(2026, 12, 3, 0, 30, 0).unwrap()));
        // 07:30 local: the 2nd is due; next tomorrow at 07:30 local.
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 0, 30, 0).unwrap();
        assert_eq!(
            plan.due(at),
            (NaiveDate::from_ymd_opt(2026, 12, 2), Utc.with_ymd_and_hms(2026, 12, 4, 0, 30, 0).unwrap())
        );
        // 23:00 UTC on the 2nd is 06:00 on the 3rd local: the day is the city's, not UTC's.
        let late = Utc.with_ymd_and_hms(2026, 12, 2, 23, 0, 0).unwrap();
        assert_eq!(plan.due(late).0, None);
    }
}
