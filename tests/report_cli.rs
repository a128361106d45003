//! `citypulse report` from scripted data: one self-contained HTML file whose numbers are the API's
//! summary for the same day, in Vietnamese or English, and a PDF through headless chromium (or a
//! clear message when chromium is not there).

mod common;

use common::serve::{get, scripted, Server};
use std::process::Command;

fn report(server: &Server, args: &[&str], chromium: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citypulse"));
    cmd.args(["--config", server.config_dir().to_str().unwrap(), "report"]).args(args);
    cmd.env("CITYPULSE__CLICKHOUSE__URL", &server.url).env("CITYPULSE__CLICKHOUSE__DATABASE", &server.db);
    match chromium {
        Some(c) => cmd.env("CITYPULSE_CHROMIUM", c),
        None => cmd.env_remove("CITYPULSE_CHROMIUM"),
    };
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The text of `<td data-field="{field}">` in the row `<tr data-{kind}="{id}">`.
fn cell(html: &str, kind: &str, id: &str, field: &str) -> String {
    let row = html.split(&format!("<tr data-{kind}=\"{id}\">")).nth(1).unwrap_or_else(|| panic!("no row {id}"));
    let row = &row[..row.find("</tr>").unwrap()];
    let at = row.split(&format!("<td data-field=\"{field}\">")).nth(1).unwrap_or_else(|| panic!("no {field} in {id}"));
    at[..at.find("</td>").unwrap()].to_owned()
}

#[test]
fn the_report_holds_the_apis_numbers_and_nothing_external() {
    let Some(url) = common::clickhouse_url() else { return };
    let server = Server::start(&url, scripted(), false);
    let (_, summary) = get(&server.base, "/api/v1/summary?date=2026-11-30", None);
    let dir = std::env::temp_dir().join(common::unique_name("report"));
    std::fs::create_dir_all(&dir).unwrap();
    let html_path = dir.join("vi.html");
    let (ok, out) = report(&server, &["--date", "2026-11-30", "--out", html_path.to_str().unwrap()], None);
    assert!(ok, "{out}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    for t in summary["topics"].as_array().unwrap() {
        let id = t["topic"].as_str().unwrap();
        assert_eq!(cell(&html, "topic", id, "posts"), t["posts"].to_string(), "{id}");
        assert_eq!(cell(&html, "topic", id, "negative"), t["negative"].to_string(), "{id}");
    }
    assert_eq!(cell(&html, "topic", "flooding", "net"), "−0.40");
    for p in summary["places_moved"].as_array().unwrap() {
        assert_eq!(cell(&html, "place", p["place"].as_str().unwrap(), "posts"), p["posts"].to_string());
    }
    assert!(html.contains("Báo cáo dư luận") && html.contains("Thứ Hai, 2026-11-30"), "Vietnamese by default");
    for external in ["<script", "<link", "src=\"http", "url(", "@import"] {
        assert!(!html.contains(external), "{external} in a self-contained report");
    }

    let en_path = dir.join("en.html");
    let (ok, out) =
        report(&server, &["--date", "2026-11-30", "--lang", "en", "--out", en_path.to_str().unwrap()], None);
    assert!(ok, "{out}");
    let en = std::fs::read_to_string(&en_path).unwrap();
    assert!(en.contains("Daily opinion report") && en.contains("Monday, 2026-11-30") && en.contains(">Flooding<"));

    let pdf_path = dir.join("report.pdf");
    let pdf_args = ["--date", "2026-11-30", "--format", "pdf", "--out", pdf_path.to_str().unwrap()];
    let (ok, out) = report(&server, &pdf_args, Some("/nonexistent/chromium"));
    assert!(!ok && out.contains("not installed") && out.contains("--format html"), "{out}");
    if let Some(chromium) = common::service_env("CITYPULSE_CHROMIUM") {
        let (ok, out) = report(&server, &pdf_args, Some(&chromium));
        assert!(ok, "{out}");
        assert!(std::fs::read(&pdf_path).unwrap().starts_with(b"%PDF"), "a PDF");
    }
    let _ = std::fs::remove_dir_all(dir);
}
