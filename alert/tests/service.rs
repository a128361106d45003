//! The stage itself (`alert::run`): it evaluates as soon as it starts, records the event before
//! delivering it, stops promptly while a delivery waits to retry, and the next start resumes that
//! delivery under the same delivery id instead of firing the alert again.

mod common;

use alert::deliver::RetryPolicy;
use axum::{extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Receiver {
    up: Arc<AtomicBool>,
    ids: Arc<Mutex<Vec<String>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    let id = headers.get("x-citypulse-delivery").and_then(|v| v.to_str().ok()).unwrap_or_default();
    r.ids.lock().unwrap().push(id.to_owned());
    if r.up.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_by_shutdown_is_resumed_with_the_same_id_and_nothing_fires_twice() {
    let Some(t) = TestDb::new("cp_alert_service").await else { return };
    let receiver = Receiver::default();
    let app = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = format!(
        "[[rule]]\nname = \"terms\"\nkind = \"watch_terms\"\nterms = [\"ngập\"]\ntopic = \"*\"\nthreshold = 5\nnotify = [\"hook\"]\n\n\
         [[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\n"
    );
    let notifiers = toml::from_str::<schema::config::AlertsConfig>(&config).unwrap().notifier;
    // A long backoff: the stage is stopped while it waits to retry.
    let policy = RetryPolicy {
        max_attempts: 5,
        timeout: Duration::from_secs(2),
        backoff_base: Duration::from_secs(60),
        backoff_max: Duration::from_secs(60),
    };
    t.write(flood(chrono::Utc::now(), 20, 30, "now")).await;

    let shutdown = CancellationToken::new();
    let stage =
        tokio::spawn(alert::run(t.settings(&config), t.deps_with(&notifiers, None, policy.clone()), shutdown.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receiver.ids.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the stage never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let stats = tokio::time::timeout(Duration::from_secs(10), stage).await.expect("stops promptly").unwrap().unwrap();
    assert_eq!((stats.evaluations, stats.events), (1, 1), "{stats:?}");
    let first_id = receiver.ids.lock().unwrap()[0].clone();

    receiver.up.store(true, Ordering::SeqCst);
    let again =
        alert::evaluate_once(&t.settings(&config), t.deps_with(&notifiers, None, policy), chrono::Utc::now(), false)
            .await
            .unwrap();
    assert!(again.is_empty(), "the open alert was read back, not fired again: {again:?}");
    assert_eq!(
        *receiver.ids.lock().unwrap(),
        [first_id.clone(), first_id.clone()],
        "one delivery id across the restart"
    );
    let attempts: Vec<(u32, String)> = t
        .client
        .query(&format!("SELECT attempt, outcome FROM {}.alert_notifications ORDER BY attempt", t.db))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(attempts, [(1, "retrying".to_owned()), (2, "delivered".to_owned())]);
    assert_eq!(t.count("SELECT count() FROM DB.alert_events FINAL").await, 1);
    t.drop_db().await;
}
