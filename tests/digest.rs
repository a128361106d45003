//! The daily digest as the office receives it, from a real SMTP server on 127.0.0.1 (aiosmtpd):
//! `citypulse alert digest --date D` mails the report of D (subject, the report's numbers in the
//! HTML and text parts, the example posts); the alert stage with `[digest]` due mails yesterday's
//! report once, and a restart does not send it again.

mod common;

use chrono::{Duration, TimeZone};
use common::serve::scripted;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testkit::smtp::SmtpSink;

/// A migrated database holding `posts`.
fn database(url: &str, posts: Vec<schema::AnalyzedPost>) -> String {
    let db = common::unique_name("digest");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = clickhouse::Client::default().with_url(url).with_validation(false);
        let database = store::Database::new(&db).unwrap();
        store::migrate(&client, &database, store::CityZone::new("Asia/Ho_Chi_Minh").unwrap()).await.unwrap();
        let report =
            store::Writer::new(client, database, Default::default()).write(posts, &Default::default()).await.unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    });
    db
}

/// The shipped configuration plus an email notifier to `smtp` and a digest at `time`.
fn config(smtp: &str, time: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name("digest_config"));
    common::copy_config_into(&dir);
    let mut alerts = std::fs::read_to_string(dir.join("alerts.toml")).unwrap();
    alerts.push_str(&format!(
        "\n[[notifier]]\nname = \"office_mail\"\nkind = \"email\"\nsmtp_server = \"{smtp}\"\nsmtp_security = \"plain\"\n\
         from = \"citypulse@hcmc.example.vn\"\nto = [\"truyenthong@hcmc.example.vn\"]\n\n\
         [digest]\ntime = \"{time}\"\nnotify = [\"office_mail\"]\n"
    ));
    std::fs::write(dir.join("alerts.toml"), alerts).unwrap();
    dir
}

fn citypulse(config: &Path, url: &str, db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citypulse"));
    cmd.arg("--config").arg(config);
    cmd.env("CITYPULSE__CLICKHOUSE__URL", url).env("CITYPULSE__CLICKHOUSE__DATABASE", db);
    cmd
}

fn delivered(url: &str, db: &str, event_id: &str) -> u64 {
    let sql =
        format!("SELECT count() FROM {db}.alert_notifications WHERE event_id = '{event_id}' AND outcome = 'delivered'");
    let body = reqwest::blocking::Client::new().post(url).body(sql).send().and_then(|r| r.text());
    body.ok().and_then(|b| b.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn alert_digest_mails_the_days_report() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(sink) = SmtpSink::start(&[]) else { return };
    let db = database(&url, scripted());
    let dir = config(&sink.address(), "07:30");
    let out = citypulse(&dir, &url, &db).args(["alert", "digest", "--date", "2026-11-30"]).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("digest of 2026-11-30 through office_mail: delivered"), "{said}");

    let mail = sink.next(std::time::Duration::from_secs(10)).expect("the digest reached the SMTP server");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["truyenthong@hcmc.example.vn"]));
    let subject = mail["subject"].as_str().unwrap();
    assert!(subject.contains("Báo cáo dư luận 2026-11-30"), "{subject}");
    let html = mail["html"].as_str().expect("the report as HTML");
    assert!(html.contains("<tr data-topic=\"flooding\">"), "the report's topic table");
    let flooding = html.split("<tr data-topic=\"flooding\">").nth(1).unwrap();
    let flooding = &flooding[..flooding.find("</tr>").unwrap()];
    assert!(flooding.contains("<td data-field=\"posts\">10</td>"), "{flooding}");
    assert!(flooding.contains("<td data-field=\"negative\">7</td>"), "{flooding}");
    let text = mail["text"].as_str().expect("a text part");
    assert!(text.contains("Ngập nước: 10 bài · 7 tiêu cực · cảm xúc ròng −0.40"), "{text}");
    assert!(text.contains("[Ngập nước] (positive) Mưa lớn ở Quận 7"), "example posts: {text}");

    let none = citypulse(&dir, &url, &db).args(["alert", "digest", "--date", "30/11"]).output().unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("use YYYY-MM-DD"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_stage_mails_yesterdays_digest_once_across_a_restart() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(sink) = SmtpSink::start(&[]) else { return };
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
    let yesterday = chrono::Utc::now().with_timezone(&tz).date_naive() - Duration::days(1);
    let shift = tz.from_local_datetime(&yesterday.and_hms_opt(0, 0, 0).unwrap()).unwrap()
        - tz.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
    let posts: Vec<_> = scripted()
        .into_iter()
        .map(|mut p| {
            p.created_at += shift;
            p.fetched_at += shift;
            p.analyzed_at += shift;
            p
        })
        .collect();
    let db = database(&url, posts);
    // Due at midnight: by the time the stage starts, yesterday's digest is due.
    let dir = config(&sink.address(), "00:00");
    let event_id = format!("digest-{yesterday}");
    for run in 0..2 {
        let mut stage =
            citypulse(&dir, &url, &db).arg("alert").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        if run == 0 {
            let mail = sink.next(std::time::Duration::from_secs(20)).expect("the stage mailed the digest");
            assert!(mail["subject"].as_str().unwrap().contains(&format!("Báo cáo dư luận {yesterday}")), "{mail}");
            assert!(mail["html"].as_str().unwrap().contains("<td data-field=\"posts\">10</td>"));
            while delivered(&url, &db, &event_id) == 0 {
                assert!(std::time::Instant::now() < deadline, "the send was never recorded");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        } else {
            // The restarted stage finds the digest done and sends nothing.
            assert!(sink.next(std::time::Duration::from_secs(6)).is_none(), "the digest went out twice");
        }
        let _ = stage.kill();
        let _ = stage.wait();
    }
    assert_eq!(delivered(&url, &db, &event_id), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
