//! An alert's life on real ClickHouse with webhook receivers on 127.0.0.1: fired once, re-sent
//! only after the cooldown and when worse, resolved once; every evaluation is a fresh engine that
//! reads its state back (a restart), so nothing is created twice. Receivers: one checks the
//! signature, one answers 500 twice then 200, one answers 400, one hangs.

mod common;

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use chrono::Duration;
use common::*;
use schema::config::alerts::Notifier;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const SECRET: &str = "s3cret-for-tests";

/// What a receiver saw: (event header, delivery id, arrival) per request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String, Instant)>>>);

impl Seen {
    fn all(&self) -> Vec<(String, String, Instant)> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Signed,
    FailTwice,
    Refuse,
    Hang,
}

async fn receive(State((how, seen)): State<(Behaviour, Seen)>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let delivery = h("x-citypulse-delivery");
    let earlier = seen.all().iter().filter(|(_, d, _)| *d == delivery).count();
    seen.0.lock().unwrap().push((h("x-citypulse-event"), delivery.clone(), Instant::now()));
    match how {
        Behaviour::Signed => {
            let sig = h("x-citypulse-signature");
            let t: i64 = sig.trim_start_matches("t=").split(',').next().unwrap_or("0").parse().unwrap_or(0);
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let ok = sig == alert::deliver::signature(SECRET.as_bytes(), t, &body)
                && h("content-type") == "application/json"
                && event["event_id"] == delivery.as_str();
            if ok {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }
        Behaviour::FailTwice if earlier < 2 => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailTwice => StatusCode::OK,
        Behaviour::Refuse => StatusCode::BAD_REQUEST,
        Behaviour::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            StatusCode::OK
        }
    }
}

async fn receiver(how: Behaviour) -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().route("/hook", post(receive)).with_state((how, seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

const RULE: &str = r#"
[[rule]]
name = "flood_terms"
kind = "watch_terms"
terms = ["ngập"]
topic = "*"
window_minutes = 30
cooldown_minutes = 30
threshold = 5
notify = ["signed", "flaky", "refusing", "hanging"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fired_once_renotified_after_cooldown_when_worse_resolved_once_and_delivered() {
    let Some(t) = TestDb::new("cp_alert_life").await else { return };
    let mut notifiers = String::new();
    let mut seen = HashMap::new();
    for (name, how) in [
        ("signed", Behaviour::Signed),
        ("flaky", Behaviour::FailTwice),
        ("refusing", Behaviour::Refuse),
        ("hanging", Behaviour::Hang),
    ] {
        let (url, s) = receiver(how).await;
        seen.insert(name, s);
        let extra = match name {
            "signed" => "secret_env = \"TEST_SECRET\"\n",
            "hanging" => "max_attempts = 2\n",
            _ => "",
        };
        notifiers += &format!("[[notifier]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n{extra}\n");
    }
    let config = format!("{RULE}{notifiers}");
    let settings = t.settings(&config);
    let notifier_config: Vec<Notifier> = toml::from_str::<schema::config::AlertsConfig>(&config).unwrap().notifier;
    let once = |at| {
        let deps = t.deps(&notifier_config, Some(SECRET));
        let settings = settings.clone();
        async move { alert::evaluate_once(&settings, deps, at, false).await.expect("evaluate") }
    };
    let names = |events: &[alert::AlertEvent]| events.iter().map(|e| e.event.clone()).collect::<Vec<_>>();

    let t1 = local(2026, 12, 1, 10, 0);
    t.write(flood(t1, 6, 30, "a")).await;
    let fired = once(t1).await;
    assert_eq!(names(&fired), ["fired"]);
    assert_eq!((fired[0].observed, fired[0].topic.as_str(), fired[0].place.as_str()), (6.0, "*", "*"));

    t.write(flood(t1 + Duration::minutes(10), 10, 10, "b")).await;
    assert_eq!(names(&once(t1 + Duration::minutes(10)).await), Vec::<String>::new(), "worse, but in the cooldown");
    let renotified = once(t1 + Duration::minutes(30)).await;
    assert_eq!(names(&renotified), ["renotified"], "cooled down and worse (10 posts > 6)");
    assert_eq!(
        names(&once(t1 + Duration::minutes(30)).await),
        Vec::<String>::new(),
        "the same evaluation again: nothing twice"
    );
    assert_eq!(names(&once(t1 + Duration::minutes(45)).await), Vec::<String>::new(), "quiet for less than a window");
    let resolved = once(t1 + Duration::minutes(60)).await;
    assert_eq!(names(&resolved), ["resolved"], "a window after it last held (t1+30m)");
    assert_eq!(names(&once(t1 + Duration::minutes(61)).await), Vec::<String>::new());

    let events = [&fired[0], &renotified[0], &resolved[0]];
    assert!(events.iter().all(|e| e.alert_id == fired[0].alert_id && e.fired_at == fired[0].fired_at));
    assert_eq!(resolved[0].resolved_at.map(|r| r.to_rfc3339()).as_deref(), Some("2026-12-01T11:00:00+07:00"));
    assert_eq!(t.count("SELECT count() FROM DB.alert_events FINAL").await, 3);

    // Receivers: each event once to the signed one (signature checked there), three tries to the
    // flaky one under one delivery id, one to the refusing one, two (timed out) to the hanging one.
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let per_event = |name: &str| {
        let all = seen[name].all();
        ids.iter().map(|id| all.iter().filter(|(_, d, _)| d == id).count()).collect::<Vec<_>>()
    };
    assert_eq!(per_event("signed"), [1, 1, 1]);
    assert_eq!(per_event("flaky"), [3, 3, 3]);
    assert_eq!(per_event("refusing"), [1, 1, 1]);
    assert_eq!(per_event("hanging"), [2, 2, 2]);
    let headers: Vec<String> = seen["signed"].all().into_iter().map(|(h, _, _)| h).collect();
    assert_eq!(headers, ["alert.fired", "alert.renotified", "alert.resolved"]);
    // The hanging channel did not hold the others back: the signed receiver had each event
    // before the hanging one's first attempt timed out.
    for id in &ids {
        let at = |name: &str| seen[name].all().into_iter().find(|(_, d, _)| d == id).unwrap().2;
        assert!(at("signed") < at("hanging") + std::time::Duration::from_millis(400), "{id}");
    }
    let sql = format!(
        "SELECT outcome FROM {}.alert_notifications WHERE notifier = ? AND event_id = ? ORDER BY attempt",
        t.db
    );
    let mut outcomes = HashMap::new();
    for notifier in ["signed", "flaky", "refusing", "hanging"] {
        let q = t.client.query(&sql).bind(notifier).bind(&fired[0].event_id);
        outcomes.insert(notifier, q.fetch_all::<String>().await.unwrap());
    }
    assert_eq!(outcomes["signed"], ["delivered"]);
    assert_eq!(outcomes["flaky"], ["retrying", "retrying", "delivered"]);
    assert_eq!(outcomes["refusing"], ["failed"]);
    assert_eq!(outcomes["hanging"], ["retrying", "failed"]);

    let history = alert::history::History::new(t.client.clone(), t.db.clone());
    let listed = history.list(0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].row.state.as_str(), listed[0].row.events), ("resolved", 3));
    assert_eq!(listed[0].deliveries.get("failed"), Some(&6), "refusing and hanging, three events each");
    t.drop_db().await;
}
