//! The Slack notifier against a Slack-compatible receiver on 127.0.0.1: the message has the
//! fallback text, a header naming the rule, the numbers as fields, the example posts and the
//! dashboard button; a 429 with Retry-After is retried like any webhook.

mod common;

use axum::{body::Bytes, extract::State, http::StatusCode, routing::post, Router};
use common::*;
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<serde_json::Value>>>;

async fn slack(State(seen): State<Seen>, body: Bytes) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    let mut seen = seen.lock().unwrap();
    seen.push(serde_json::from_slice(&body).unwrap_or_default());
    // Slack answers a burst with 429 and Retry-After; the first message gets that.
    if seen.len() == 1 {
        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "rate_limited")
    } else {
        (StatusCode::OK, [("retry-after", "0")], "ok")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_alert_reaches_slack_with_header_numbers_posts_and_link() {
    let Some(t) = TestDb::new("cp_alert_slack").await else { return };
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T000/B000/XXXX", listener.local_addr().unwrap());
    let app = Router::new().route("/services/T000/B000/XXXX", post(slack)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = format!(
        "[[rule]]\nname = \"flood_terms\"\nkind = \"watch_terms\"\nterms = [\"ngập\"]\nper_place = true\nthreshold = 5\nnotify = [\"office_slack\"]\n\n\
         [[notifier]]\nname = \"office_slack\"\nkind = \"slack\"\nurl = \"{url}\"\n"
    );
    let notifiers = toml::from_str::<schema::config::AlertsConfig>(&config).unwrap().notifier;
    let at = local(2026, 12, 1, 10, 0);
    t.write(flood(at, 12, 30, "s")).await;
    let events = alert::evaluate_once(&t.settings(&config), t.deps(&notifiers, None), at, false).await.unwrap();
    assert_eq!(events.len(), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "retried once after the 429");
    let m = &seen[1];
    assert!(m["text"].as_str().unwrap().contains("flood_terms"), "{m}");
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("flood_terms"));
    let fields: Vec<&str> =
        blocks[1]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
    assert!(fields.iter().any(|f| f.starts_with("*Posts in the window*\n12")), "{fields:?}");
    assert!(fields.iter().any(|f| f.contains("ngập")), "the matched term: {fields:?}");
    let posts: Vec<&str> =
        blocks.iter().filter_map(|b| b["text"]["text"].as_str()).filter(|t| t.starts_with("> ")).collect();
    assert_eq!(posts.len(), 5, "five example posts");
    assert!(posts.iter().all(|p| p.contains("Nguyễn Hữu Thọ") || p.contains("ngap")), "{posts:?}");
    let button = &blocks.last().unwrap()["elements"][0];
    assert!(
        button["url"].as_str().unwrap().starts_with("https://citypulse.example.vn/?topic=flooding&place=district_7"),
        "{button}"
    );
    t.drop_db().await;
}
