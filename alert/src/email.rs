//! The email notifier: one message per event over SMTP (lettre; STARTTLS, TLS or plain as
//! configured; user and password read from the environment variables the notifier names).
//!
//! Retries follow the webhook's classification, in SMTP's terms: a 2xx reply is delivered; a 4xx
//! reply (greylisting, a full queue) and transport errors (refused, reset, timeout) are retried
//! with the same backoff; a 5xx reply, an address the message cannot carry, and a TLS failure
//! (STARTTLS not offered, a certificate that does not verify) fail at once, since they would
//! recur. The reply code is recorded where a webhook's HTTP status is.

use crate::deliver::{attempt_loop, error_chain, Attempt, Outcome, RetryPolicy, Tried, Verdict};
use crate::mail::Mail;
use crate::notify::NotifierError;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schema::config::alerts::{Notifier, SmtpSecurity};
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A configured email notifier.
pub struct Mailer {
    name: String,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    policy: RetryPolicy,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// Never shows the password (it is inside the transport, which is not printed).
impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("name", &self.name).field("server", &self.server).finish_non_exhaustive()
    }
}

impl Mailer {
    /// `policy` is the notifier's own (its `max_attempts` already applied).
    pub fn new(n: &Notifier, env: &dyn Fn(&str) -> Option<String>, policy: RetryPolicy) -> Result<Self, NotifierError> {
        let bad = |reason: String| NotifierError::Email { notifier: n.name.clone(), reason };
        let server = n.smtp_server.clone().unwrap_or_default();
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| bad(format!("smtp_server {server:?} is not host:port")))?;
        let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| bad(format!("address {a:?}: {e}")));
        let from = mailbox(n.from.as_deref().unwrap_or_default())?;
        let to = n.to.iter().map(|a| mailbox(a)).collect::<Result<Vec<_>, _>>()?;
        let builder = match n.smtp_security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
        }
        .map_err(|e| bad(format!("TLS for {host}: {e}")))?;
        let mut builder = builder.port(port).timeout(Some(policy.timeout));
        if let (Some(user_var), Some(password_var)) = (&n.smtp_user_env, &n.smtp_password_env) {
            let read = |var: &String| {
                env(var)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| NotifierError::MissingLogin { notifier: n.name.clone(), var: var.clone() })
            };
            builder = builder.credentials(Credentials::new(read(user_var)?, read(password_var)?));
        }
        Ok(Mailer { name: n.name.clone(), server, from, to, policy, transport: builder.build() })
    }

    /// Sends `mail`, numbering attempts from `first_attempt` (attempts made before a restart
    /// count toward `max_attempts`); `on_attempt` sees each attempt as it ends. Returns the last:
    /// `delivered`, `failed`, or — only after `shutdown` — `retrying`.
    pub async fn deliver_from(
        &self,
        mail: &Mail,
        first_attempt: u32,
        shutdown: &CancellationToken,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Attempt {
        let once = move |_at| self.exchange(mail);
        attempt_loop(&self.policy, first_attempt, shutdown, on_attempt, once, |a| self.report(mail, a)).await
    }

    async fn exchange(&self, mail: &Mail) -> Tried {
        let fail = |code, error| Tried { verdict: Verdict::Fail, code, error: Some(error) };
        let retry = |code, error| Tried { verdict: Verdict::Retry { retry_after: None }, code, error: Some(error) };
        let message = match self.message(mail) {
            Ok(m) => m,
            Err(e) => return fail(None, format!("building the message: {e}")),
        };
        // lettre's timeout bounds each command; this bounds the whole conversation.
        let whole = self.policy.timeout.saturating_mul(3).max(Duration::from_secs(1));
        match tokio::time::timeout(whole, self.transport.send(message)).await {
            Err(_) => retry(None, format!("timed out after {whole:?}")),
            Ok(Ok(reply)) => Tried { verdict: Verdict::Delivered, code: Some(u16::from(reply.code())), error: None },
            Ok(Err(e)) => {
                let code = e.status().map(u16::from);
                let text = error_chain(&e);
                if e.is_transient() || e.is_timeout() || (!e.is_permanent() && !e.is_client() && !e.is_tls()) {
                    retry(code, text)
                } else {
                    fail(code, text)
                }
            }
        }
    }

    fn message(&self, mail: &Mail) -> Result<Message, lettre::error::Error> {
        let domain = self.from.email.domain().to_owned();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", mail.id)))
            .user_agent(concat!("citypulse/", env!("CARGO_PKG_VERSION")).to_owned());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let body = MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone()));
        builder.multipart(body)
    }

    fn report(&self, mail: &Mail, a: &Attempt) {
        metrics::counter!("citypulse_alert_email_attempts_total", "notifier" => self.name.clone(), "outcome" => a.outcome.as_str())
            .increment(1);
        match a.outcome {
            Outcome::Delivered => {
                tracing::info!(notifier = self.name, attempt = a.attempt, subject = mail.subject, "email sent")
            }
            _ => tracing::warn!(
                notifier = self.name,
                attempt = a.attempt,
                outcome = a.outcome.as_str(),
                code = a.http_status,
                error = a.error.as_deref().unwrap_or(""),
                subject = mail.subject,
                "email not sent"
            ),
        }
    }
}
