//! The email notifier against a real SMTP server on 127.0.0.1 (aiosmtpd): the alert arrives with
//! a subject naming rule, topic, place and severity, a text and an HTML part carrying the numbers,
//! the example posts, the chart and the link; a greylisting 451 is retried, a refused login or a
//! missing STARTTLS fails at once, and every attempt is recorded.

mod common;

use alert::deliver::RetryPolicy;
use common::*;
use std::time::Duration;
use testkit::smtp::SmtpSink;

const FLOOD_RULE: &str = "[[rule]]\nname = \"flood_terms\"\nkind = \"watch_terms\"\nterms = [\"ngập\"]\nper_place = true\nthreshold = 5\nnotify = [\"office_mail\"]\n\n";

fn mail_notifier(server: &str, security: &str) -> String {
    format!(
        "[[notifier]]\nname = \"office_mail\"\nkind = \"email\"\nsmtp_server = \"{server}\"\nsmtp_security = \"{security}\"\n\
         from = \"citypulse@hcmc.example.vn\"\nto = [\"office@hcmc.example.vn\", \"oncall@hcmc.example.vn\"]\n\
         smtp_user_env = \"SMTP_USER\"\nsmtp_password_env = \"SMTP_PASSWORD\"\n"
    )
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    }
}

fn login(password: &'static str) -> impl Fn(&str) -> Option<String> {
    move |var| match var {
        "SMTP_USER" => Some("office".into()),
        "SMTP_PASSWORD" => Some(password.into()),
        _ => None,
    }
}

/// (attempt, outcome, code, error) of every recorded attempt, in order.
async fn attempts(t: &TestDb) -> Vec<(u32, String, Option<u16>, String)> {
    t.client
        .query(&format!(
            "SELECT attempt, outcome, http_status, error FROM {}.alert_notifications WHERE notifier = 'office_mail' ORDER BY attempt",
            t.db
        ))
        .fetch_all::<(u32, String, Option<u16>, String)>()
        .await
        .expect("attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_alert_is_mailed_with_subject_numbers_posts_and_chart() {
    let Some(sink) = SmtpSink::start(&["--auth", "office:s3cret", "--refuse-first", "1"]) else { return };
    let Some(t) = TestDb::new("cp_alert_email").await else { return };
    let config = format!("{FLOOD_RULE}{}", mail_notifier(&sink.address(), "plain"));
    let notifiers = toml::from_str::<schema::config::AlertsConfig>(&config).unwrap().notifier;
    let at = local(2026, 12, 1, 10, 0);
    t.write(flood(at, 12, 30, "m")).await;
    let deps = t.deps_env(&notifiers, login("s3cret"), policy());
    let events = alert::evaluate_once(&t.settings(&config), deps, at, false).await.unwrap();
    assert_eq!(events.len(), 1);

    let mail = sink.next(Duration::from_secs(10)).expect("the alert reached the SMTP server");
    assert_eq!(mail["login"], "office");
    assert_eq!(mail["mail_from"], "citypulse@hcmc.example.vn");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["office@hcmc.example.vn", "oncall@hcmc.example.vn"]));
    assert_eq!(mail["content_type"], "multipart/alternative");
    let subject = mail["subject"].as_str().unwrap();
    for part in ["flood_terms", "flooding", "district_7", "warning"] {
        assert!(subject.contains(part), "subject {subject:?} names {part}");
    }
    assert!(mail["message_id"].as_str().unwrap().contains(&events[0].event_id), "{mail}");
    let text = mail["text"].as_str().expect("a text/plain part");
    assert!(text.contains("Posts in the window: 12"), "{text}");
    assert!(text.contains("Terms: ngập"), "{text}");
    assert_eq!(text.matches("\n- \"").count(), 5, "five example posts: {text}");
    assert!(text.contains("Nguyễn Hữu Thọ") || text.contains("ngap"), "{text}");
    assert!(text.contains("Dashboard: https://citypulse.example.vn/?topic=flooding&place=district_7"), "{text}");
    let html = mail["html"].as_str().expect("a text/html part");
    if let Ok(dir) = std::env::var("CITYPULSE_MAIL_DUMP") {
        // To look at the message as the office will (open it in a browser).
        std::fs::write(format!("{dir}/alert-email.html"), html).expect("dump");
    }
    assert!(html.contains("This window") && html.contains("Threshold"), "the chart: {html}");
    assert!(html.contains("<td>12</td>"), "the posts count: {html}");
    assert_eq!(html.matches("<blockquote").count(), 5, "{html}");
    assert!(html.contains("href=\"https://citypulse.example.vn/?topic=flooding&amp;place=district_7"), "{html}");
    assert!(sink.next(Duration::from_millis(500)).is_none(), "one message, though the first try was greylisted");

    let tries = attempts(&t).await;
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!((tries[0].1.as_str(), tries[0].2), ("retrying", Some(451)), "{tries:?}");
    assert_eq!((tries[1].1.as_str(), tries[1].2), ("delivered", Some(250)), "{tries:?}");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_or_a_missing_starttls_fails_at_once() {
    let Some(sink) = SmtpSink::start(&["--auth", "office:s3cret"]) else { return };
    for (security, password, want_code, want_error) in
        [("plain", "wrong", Some(535), "authentication"), ("starttls", "s3cret", None, "STARTTLS")]
    {
        let Some(t) = TestDb::new("cp_alert_email_fail").await else { return };
        let config = format!("{FLOOD_RULE}{}", mail_notifier(&sink.address(), security));
        let notifiers = toml::from_str::<schema::config::AlertsConfig>(&config).unwrap().notifier;
        let at = local(2026, 12, 1, 10, 0);
        t.write(flood(at, 12, 30, "f")).await;
        let deps = t.deps_env(&notifiers, login(password), policy());
        alert::evaluate_once(&t.settings(&config), deps, at, false).await.unwrap();
        let tries = attempts(&t).await;
        assert_eq!(tries.len(), 1, "{security}: no retry of what would recur: {tries:?}");
        assert_eq!((tries[0].1.as_str(), tries[0].2), ("failed", want_code), "{security}: {tries:?}");
        assert!(tries[0].3.to_lowercase().contains(&want_error.to_lowercase()), "{security}: {tries:?}");
        t.drop_db().await;
    }
    assert!(sink.next(Duration::from_millis(300)).is_none(), "nothing was delivered");
}

#[test]
fn a_missing_login_stops_the_notifier_from_being_built() {
    let config = format!("{FLOOD_RULE}{}", mail_notifier("127.0.0.1:2525", "starttls"));
    let notifiers = toml::from_str::<schema::config::AlertsConfig>(&config).unwrap().notifier;
    let err = alert::notify::Notifiers::build(&notifiers, |_| None, &policy()).err().expect("refused");
    assert!(err.to_string().contains("SMTP_USER"), "{err}");
}
