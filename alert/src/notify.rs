//! The configured notifiers and the dispatch of events to them. Each (event, notifier) delivery
//! runs in its own task, so a failing or hanging channel never delays the others; every attempt
//! is recorded in `alert_notifications` as it ends.

use crate::deliver::{Attempt, Delivery, EventName, Outcome, RetryPolicy, Webhook};
use crate::email::Mailer;
use crate::event::AlertEvent;
use crate::history::History;
use crate::mail::Mail;
use schema::config::alerts::{Notifier, NotifierKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why the notifiers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("notifier {notifier}: secret_env names {var}, which is not set (refusing to send unsigned)")]
    MissingSecret { notifier: String, var: String },
    #[error("notifier {notifier}: {var} (the SMTP login) is not set")]
    MissingLogin { notifier: String, var: String },
    #[error("notifier {notifier}: {reason}")]
    Email { notifier: String, reason: String },
    #[error("notifier {0}: a webhook or slack notifier needs a url")]
    NoUrl(String),
}

enum Channel {
    Webhook(Webhook),
    /// A Slack incoming webhook: the same delivery as a webhook, a Slack message as the body.
    Slack(Webhook),
    Email(Mailer),
    Log,
}

/// Every configured notifier by name.
#[derive(Clone)]
pub struct Notifiers {
    channels: Arc<BTreeMap<String, Channel>>,
}

impl Notifiers {
    /// Builds the notifiers; `env` reads secrets (the process environment, or a test's).
    pub fn build(
        config: &[Notifier],
        env: impl Fn(&str) -> Option<String>,
        retry: &RetryPolicy,
    ) -> Result<Self, NotifierError> {
        let mut channels = BTreeMap::new();
        for n in config {
            let policy = RetryPolicy { max_attempts: n.max_attempts, ..retry.clone() };
            let channel = match (n.kind, &n.url) {
                (NotifierKind::Webhook, Some(url)) => {
                    let secret = match &n.secret_env {
                        Some(var) => Some(env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                            NotifierError::MissingSecret { notifier: n.name.clone(), var: var.clone() }
                        })?),
                        None => None,
                    };
                    Channel::Webhook(Webhook::new(&n.name, url.clone(), secret.map(String::into_bytes), policy))
                }
                (NotifierKind::Slack, Some(url)) => Channel::Slack(Webhook::new(&n.name, url.clone(), None, policy)),
                (NotifierKind::Email, _) => Channel::Email(Mailer::new(n, &env, policy)?),
                (NotifierKind::Log, _) => Channel::Log,
                (NotifierKind::Webhook | NotifierKind::Slack, None) => {
                    return Err(NotifierError::NoUrl(n.name.clone()))
                }
            };
            channels.insert(n.name.clone(), channel);
        }
        Ok(Notifiers { channels: Arc::new(channels) })
    }

    /// Starts the delivery of `event` to `notifier` (attempts made before a restart: `made`) on
    /// `tasks`. Unknown names are skipped (check-config rejects them).
    pub fn dispatch(
        &self,
        tasks: &mut JoinSet<()>,
        event: &AlertEvent,
        notifier: &str,
        made: u32,
        history: Option<History>,
        shutdown: &CancellationToken,
    ) {
        let (notifiers, event, notifier, shutdown) =
            (self.clone(), event.clone(), notifier.to_owned(), shutdown.clone());
        tasks.spawn(async move {
            let attempts = notifiers.deliver(&event, &notifier, made, &shutdown).await;
            if let Some(history) = history {
                for a in &attempts {
                    if let Err(e) = history.record_attempt(&event, &notifier, a).await {
                        tracing::warn!(notifier, event_id = event.event_id, error = %e, "could not record a delivery attempt");
                    }
                }
            }
        });
    }

    /// Delivers `event` to `notifier` now (retrying as its policy says) and returns every attempt;
    /// none when no notifier has that name.
    pub async fn deliver(
        &self,
        event: &AlertEvent,
        notifier: &str,
        made: u32,
        shutdown: &CancellationToken,
    ) -> Vec<Attempt> {
        let Some(channel) = self.channels.get(notifier) else { return Vec::new() };
        match channel {
            Channel::Log => vec![log(event, notifier)],
            Channel::Email(mailer) => mail_attempts(mailer, &crate::mail::alert_mail(event), made, shutdown).await,
            Channel::Webhook(hook) | Channel::Slack(hook) => {
                let body = match channel {
                    Channel::Slack(_) => serde_json::to_vec(&crate::slack::message(event)),
                    _ => serde_json::to_vec(event),
                };
                let delivery = Delivery {
                    event_id: event.event_id.clone(),
                    event: event_name(&event.event),
                    body: body.unwrap_or_default(),
                };
                let mut seen = Vec::new();
                hook.deliver_from(&delivery, made + 1, shutdown, &mut |a: &Attempt| seen.push(a.clone())).await;
                seen
            }
        }
    }

    /// Sends `mail` (the daily digest) through the email notifier `notifier`, attempts numbered
    /// from `made + 1`; every attempt is returned. `None` when `notifier` is no email notifier.
    pub async fn send_mail(
        &self,
        mail: &Mail,
        notifier: &str,
        made: u32,
        shutdown: &CancellationToken,
    ) -> Option<Vec<Attempt>> {
        let Some(Channel::Email(mailer)) = self.channels.get(notifier) else { return None };
        Some(mail_attempts(mailer, mail, made, shutdown).await)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }
}

/// Every attempt of one mail, numbered on from the `made` before a restart.
async fn mail_attempts(mailer: &Mailer, mail: &Mail, made: u32, shutdown: &CancellationToken) -> Vec<Attempt> {
    let mut seen = Vec::new();
    mailer.deliver_from(mail, made + 1, shutdown, &mut |a: &Attempt| seen.push(a.clone())).await;
    seen
}

fn event_name(s: &str) -> EventName {
    match s {
        "fired" => EventName::Fired,
        "renotified" => EventName::Renotified,
        _ => EventName::Resolved,
    }
}

/// The `log` notifier: one line in the service log.
fn log(e: &AlertEvent, notifier: &str) -> Attempt {
    tracing::warn!(
        notifier,
        event = e.event,
        rule = e.rule,
        topic = e.topic,
        place = e.place,
        severity = e.severity,
        observed = e.observed,
        posts = e.posts,
        window_end = %e.window.end,
        alert_id = e.alert_id,
        "alert"
    );
    Attempt { attempt: 1, outcome: Outcome::Delivered, http_status: None, error: None, at: chrono::Utc::now() }
}
