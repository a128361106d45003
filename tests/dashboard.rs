//! The dashboard in a real browser: Debian's chromium, headless, driven through chromedriver's
//! WebDriver API, against `citypulse serve` and a real ClickHouse holding scripted posts. The page
//! loads with no console errors and no request outside the server; the tiles show the numbers the
//! API returns; English relabels the page; a click on a number lists the posts behind it.
//! Screenshots: target/screenshots/dashboard-vi.png and dashboard-en.png.

mod common;

use base64::Engine as _;
use common::serve::{get, hotline_reports, recent, Server, TOKEN};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    profile: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Driver {
    fn start(chromium: &str) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/test-tools.sh installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().map(|r| !r.status().is_success()).unwrap_or(true) {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = std::env::temp_dir().join(common::unique_name("chromium_profile"));
        // No background networking: the page must work with no internet, and nothing but the
        // server may be asked for anything.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"}}}});
        let answer: Value = http.post(format!("{base}/session")).json(&caps).send().unwrap().json().unwrap();
        let session =
            answer["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {answer}")).to_owned();
        Driver { child, base, session, http, profile }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = if method == "GET" { self.http.get(url) } else { self.http.post(url).json(&body) };
        let answer: Value = request.send().unwrap().json().unwrap();
        answer["value"].clone()
    }

    fn js(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": []}))
    }

    fn click(&self, css: &str) {
        let found = self.call("POST", "/element", json!({"using": "css selector", "value": css}));
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {css}: {found}"))
            .to_owned();
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn wait_for(&self, script: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script);
            if !v.is_null() && v != json!(false) && v != json!(0) && v != json!("") {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", Value::Null);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    /// Console messages at level SEVERE (errors), through chromedriver's log endpoint.
    fn console_errors(&self) -> Vec<String> {
        let log = self.call("POST", "/se/log", json!({"type": "browser"}));
        log.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[test]
fn the_dashboard_shows_the_apis_numbers_in_vietnamese_and_english_and_lists_posts() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(chromium) = common::service_env("CITYPULSE_CHROMIUM") else { return };
    let server = Server::start(&url, recent().into_iter().chain(hotline_reports(4, 3)).collect(), false);
    let (_, trends) = get(&server.base, "/api/v1/trends?since=24h&by=topic&granularity=hour", None);
    let api_posts = |topic: &str| -> i64 {
        trends["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["key"] == topic)
            .map(|r| r["posts"].as_i64().unwrap())
            .sum()
    };
    assert_eq!((api_posts("flooding"), api_posts("traffic")), (14, 5), "{trends}");

    let driver = Driver::start(&chromium);
    driver.call("POST", "/url", json!({"url": format!("{}/", server.base)}));
    driver.wait_for("return document.querySelectorAll('#tiles .tile').length", "the tiles");
    driver.wait_for("return document.querySelectorAll('#places li[data-place]').length", "the places");
    let tile = |topic: &str| {
        driver.js(&format!("return document.querySelector('[data-topic={topic}] [data-count=posts]').textContent"))
    };
    assert_eq!(tile("flooding"), json!(api_posts("flooding").to_string()));
    assert_eq!(tile("traffic"), json!(api_posts("traffic").to_string()));
    let negative =
        driver.js("return document.querySelector('[data-topic=flooding] [data-count=negative]').textContent");
    assert!(negative.as_str().unwrap().starts_with("10 tiêu cực"), "{negative}");
    assert_eq!(driver.js("return document.documentElement.lang"), json!("vi"));
    assert_eq!(driver.js("return document.getElementById('h-tiles').textContent"), json!("Chủ đề trong kỳ"));
    driver.screenshot("dashboard-vi.png");

    driver.click("#lang");
    driver.wait_for(
        "return document.getElementById('h-tiles').textContent === 'Topics in this period'",
        "English labels",
    );
    driver.wait_for(
        "return document.querySelector('[data-topic=flooding] h3').textContent === 'Flooding'",
        "English topic labels",
    );
    assert!(driver.js("return location.search").as_str().unwrap().contains("lang=en"), "the URL keeps the view");
    driver.wait_for("return document.querySelectorAll('#tiles .tile').length", "the tiles again");
    driver.screenshot("dashboard-en.png");

    driver.click("[data-topic=flooding] [data-count=negative]");
    let listed =
        driver.wait_for("return document.querySelectorAll('#posts li.post').length", "the posts behind the number");
    assert_eq!(listed, json!(10), "the ten negative flooding posts (7 public, 3 to the hotline)");
    let first = driver.js("return document.querySelector('#posts li.post').textContent");
    assert!(first.as_str().unwrap().contains("negative"), "sentiment in words, not colour alone: {first}");

    // Flooding as the hotline hears it and as people post it: 4 reports (3 negative) vs 10 posts.
    driver.click("#posts-close");
    driver.js("const s = document.getElementById('topic'); s.value = 'flooding'; document.querySelector('#filters button[type=submit]').click();");
    driver.wait_for(
        "return document.getElementById('h-compare').textContent.includes('Flooding')",
        "the comparison for flooding",
    );
    let side = |which: &str, what: &str| {
        driver.js(&format!("return document.querySelector('[data-side={which}] [data-count={what}]').textContent"))
    };
    assert_eq!((side("official", "posts"), side("public", "posts")), (json!("4"), json!("10")));
    assert!(
        side("official", "negative").as_str().unwrap().starts_with("3 negative (75%)"),
        "{}",
        side("official", "negative")
    );
    driver.js("document.getElementById('compare-panel').scrollIntoView()");
    driver.screenshot("dashboard-compare.png");

    let resources = driver.js("return performance.getEntriesByType('resource').map(e => e.name)");
    let outside: Vec<&Value> =
        resources.as_array().unwrap().iter().filter(|r| !r.as_str().unwrap().starts_with(&server.base)).collect();
    assert!(outside.is_empty(), "requests outside the server: {outside:?}");
    let errors = driver.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn the_dashboard_lists_emerging_issues_and_proposes_one_as_a_topic() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(chromium) = common::service_env("CITYPULSE_CHROMIUM") else { return };
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
    let day = chrono::Utc::now().with_timezone(&tz).date_naive() - chrono::Duration::days(1);
    let server = Server::start(&url, common::serve::unclaimed(day), false);
    // The job, as the emerging stage or an operator runs it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(["--config", server.config_dir().to_str().unwrap(), "emerging", "--date", &day.to_string()])
        .env("CITYPULSE__CLICKHOUSE__URL", &url)
        .env("CITYPULSE__CLICKHOUSE__DATABASE", &server.db)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("#1 New") && table.contains("12 posts"), "{table}");

    let driver = Driver::start(&chromium);
    driver.call("POST", "/url", json!({"url": format!("{}/?emerging={day}", server.base)}));
    driver.wait_for("return document.querySelectorAll('#emerging article.group').length", "the emerging groups");
    let heading = driver.js("return document.querySelector('#emerging article.group h3').textContent");
    assert!(heading.as_str().unwrap().contains("chữ y"), "labelled with its words, diacritics kept: {heading}");
    let group = driver.js("return document.querySelector('#emerging article.group').textContent");
    let group = group.as_str().unwrap();
    assert!(group.contains("12 bài") && group.contains("mới"), "{group}");
    assert!(group.contains("Quận 8"), "places by name: {group}");
    assert_eq!(driver.js("return document.querySelectorAll('#emerging article.group blockquote').length"), json!(3));
    driver.js("document.getElementById('emerging-panel').scrollIntoView()");
    driver.screenshot("dashboard-emerging.png");

    driver.click("#emerging article.group .propose");
    let block = driver.wait_for(
        "const p = document.querySelector('#emerging .proposal pre'); return p ? p.textContent : ''",
        "the proposed topic block",
    );
    let block = block.as_str().unwrap();
    let parsed: schema::config::TopicsConfig = toml::from_str(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    let written = std::fs::read_dir(server.config_dir().join("proposals")).unwrap().flatten().count();
    assert_eq!(written, 1, "the proposal is on disk for review");
    assert!(parsed.topic[0].examples.len() >= 3, "{block}");
    driver.screenshot("dashboard-emerging-proposal.png");
    let errors = driver.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn the_dashboard_saves_a_search_and_shows_its_series_and_posts() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(chromium) = common::service_env("CITYPULSE_CHROMIUM") else { return };
    let server = Server::start(&url, recent(), false);
    let driver = Driver::start(&chromium);
    driver.call("POST", "/url", json!({"url": format!("{}/?period=24h", server.base)}));
    driver.wait_for("return document.querySelectorAll('#search option').length", "the configured searches");

    // A mistake in the query is shown with its column, and nothing is saved.
    let fill = |name: &str, query: &str| {
        driver.js(&format!(
            "document.getElementById('search-new').open = true; document.getElementById('search-name').value = {}; \
             document.getElementById('search-query').value = {}; document.getElementById('search-place').value = 'district_7'; \
             document.getElementById('search-form').requestSubmit();",
            json!(name),
            json!(query)
        ));
    };
    fill("ngap_q7", "ngập OR (triều");
    let error = driver.wait_for(
        "const e = document.getElementById('search-form-error'); return e.hidden ? '' : e.textContent",
        "the query's error",
    );
    assert!(error.as_str().unwrap().contains("column 9"), "{error}");

    // A good one is saved, selected, charted and counted: the 6 posts saying ngập (one as "ngap").
    fill("ngap_q7", "ngập NOT \"tin giả\"");
    driver.wait_for("return document.getElementById('search').value === 'ngap_q7'", "the saved search selected");
    let count = driver.wait_for(
        "const c = document.querySelector('#search-meta code'), b = document.querySelector('#search-meta button'); \
         return c && b && c.textContent === 'ngập NOT \"tin giả\"' ? b.textContent : ''",
        "the saved search's series",
    );
    let (_, api) = get(&server.base, "/api/v1/searches/ngap_q7/trends?since=24h&granularity=hour", None);
    let total: i64 = api["rows"].as_array().unwrap().iter().map(|r| r["posts"].as_i64().unwrap()).sum();
    assert_eq!(total, 6, "{api}");
    assert_eq!(count.as_str().unwrap(), "6 bài", "the page shows the API's number");
    assert!(driver.js("return document.querySelectorAll('#search-chart svg rect').length").as_u64().unwrap() >= 1);
    assert!(driver.js("return location.search").as_str().unwrap().contains("search=ngap_q7"), "the view is in the URL");
    driver.js("document.getElementById('searches-panel').scrollIntoView()");
    driver.screenshot("dashboard-search.png");

    driver.click("#search-meta button[data-count=posts]");
    driver.wait_for("return document.querySelectorAll('#posts li.post').length === 6", "the search's 6 posts");
    let texts =
        driver.js("return [...document.querySelectorAll('#posts li.post')].map(li => li.textContent).join('\\n')");
    assert!(texts.as_str().unwrap().lines().all(|l| l.contains("ngập") || l.contains("ngap")), "{texts}");

    // Deleted from the page, it is gone from the API.
    driver.click("#search-delete");
    driver.wait_for("return document.getElementById('search').value !== 'ngap_q7'", "the search deleted");
    assert_eq!(get(&server.base, "/api/v1/searches/ngap_q7/trends", None).0, 404);
    let errors = driver.console_errors();
    assert!(errors.iter().all(|e| e.contains("400")), "only the refused save logs (its 400): {errors:?}");
}

#[test]
fn an_analyst_corrects_a_posts_label_on_the_dashboard() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(chromium) = common::service_env("CITYPULSE_CHROMIUM") else { return };
    let server = Server::start(&url, recent(), false);
    let driver = Driver::start(&chromium);
    driver.call("POST", "/url", json!({"url": format!("{}/?period=24h&lang=en", server.base)}));
    driver.wait_for("return document.querySelector('[data-topic=flooding] [data-count=negative]')", "the tiles");
    driver.click("[data-topic=flooding] [data-count=negative]");
    driver.wait_for("return document.querySelectorAll('#posts li.post details.correct-box').length", "the posts");

    // The first post: "Wrong label?", the right sentiment, saved.
    let key =
        driver.js("const li = document.querySelector('#posts li.post'); li.querySelector('details').open = true; \
         const f = li.querySelector('form.correct'); \
         return [...f.querySelector('select[name=sentiment]').options].map(o => o.value).join(',')");
    assert_eq!(key, json!(",neutral,positive"), "the post's own label is not offered");
    driver.js("const f = document.querySelector('#posts li.post form.correct'); \
         f.querySelector('select[name=sentiment]').value = 'positive'; f.querySelector('button').click();");
    let status = driver.wait_for(
        "return document.querySelector('#posts li.post .correct-status').textContent",
        "the correction's answer",
    );
    assert!(status.as_str().unwrap().starts_with("Saved"), "{status}");
    driver.js("document.getElementById('posts-panel').scrollIntoView()");
    driver.screenshot("dashboard-correction.png");

    let (_, body) = get(&server.base, "/api/v1/corrections", None);
    let listed = body["corrections"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(
        (listed[0]["field"].as_str(), listed[0]["old_label"].as_str(), listed[0]["new_label"].as_str()),
        (Some("sentiment"), Some("negative"), Some("positive"))
    );
    // Nothing chosen: the form asks for a label and sends nothing.
    driver.js(
        "const fs = document.querySelectorAll('#posts li.post form.correct'); fs[1].closest('details').open = true; \
         fs[1].querySelector('button').click();",
    );
    let asked = driver.js("return document.querySelectorAll('#posts li.post .correct-status')[1].textContent");
    assert_eq!(asked, json!("Pick the right label."));
    assert_eq!(get(&server.base, "/api/v1/corrections", None).1["total"], json!(1));
    let errors = driver.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn a_viewers_dashboard_offers_no_form_the_api_would_refuse() {
    let Some(url) = common::clickhouse_url() else { return };
    let Some(chromium) = common::service_env("CITYPULSE_CHROMIUM") else { return };
    let server = Server::start(&url, recent(), true);
    let driver = Driver::start(&chromium);
    driver.call("POST", "/url", json!({"url": format!("{}/?period=24h&lang=en", server.base)}));
    driver.wait_for("return !document.getElementById('token-box').hidden", "the token form");
    driver.js(&format!(
        "document.getElementById('token').value = {}; document.getElementById('token-form').requestSubmit();",
        json!(TOKEN)
    ));
    driver.wait_for("return document.querySelector('[data-topic=flooding] [data-count=negative]')", "the tiles");
    driver.click("[data-topic=flooding] [data-count=negative]");
    driver.wait_for("return document.querySelectorAll('#posts li.post').length", "the posts");
    assert_eq!(driver.js("return document.querySelectorAll('#posts details.correct-box').length"), json!(0));
    assert_eq!(driver.js("return document.getElementById('search-new').hidden"), json!(true));
}
