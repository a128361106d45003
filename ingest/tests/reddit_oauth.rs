//! Reddit app-only OAuth against a token endpoint and a listing endpoint on 127.0.0.1: the
//! crawler asks for a client-credentials token with the app's id and secret (HTTP basic), sends
//! it with every listing request, and renews it before it expires, so the API never sees an
//! expired or missing token; the posts come through.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Lifetime of the tokens the test server issues: short, so a few polls outlive several.
const TOKEN_LIFE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Server {
    /// (token, issued at).
    issued: Mutex<Vec<(String, Instant)>>,
    /// Listing requests with a valid token, and without one (missing, unknown or expired).
    authorized: Mutex<u32>,
    refused: Mutex<Vec<String>>,
}

async fn token(State(s): State<Arc<Server>>, headers: HeaderMap, body: String) -> (StatusCode, String) {
    // "Basic " + base64("test-id:test-secret")
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok());
    if basic != Some("Basic dGVzdC1pZDp0ZXN0LXNlY3JldA==") || body != "grant_type=client_credentials" {
        return (StatusCode::UNAUTHORIZED, r#"{"error": 401}"#.into());
    }
    let mut issued = s.issued.lock().unwrap();
    let token = format!("token-{}", issued.len() + 1);
    issued.push((token.clone(), Instant::now()));
    let body = serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFE.as_secs(), "scope": "*"});
    (StatusCode::OK, body.to_string())
}

async fn listing(State(s): State<Arc<Server>>, headers: HeaderMap) -> (StatusCode, Vec<u8>) {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned();
    let valid =
        s.issued.lock().unwrap().iter().any(|(t, at)| given == format!("bearer {t}") && at.elapsed() < TOKEN_LIFE);
    if !valid {
        s.refused.lock().unwrap().push(given);
        return (StatusCode::UNAUTHORIZED, b"{\"message\": \"Unauthorized\", \"error\": 401}".to_vec());
    }
    *s.authorized.lock().unwrap() += 1;
    (StatusCode::OK, fixture("reddit_new.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_token_is_fetched_sent_and_renewed_before_it_expires() {
    let state = Arc::new(Server::default());
    let app = Router::new()
        .route("/api/v1/access_token", post(token))
        .route("/r/{sub}/new.json", get(listing))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Unique names: tests of this binary run in one process, whose environment they share.
    std::env::set_var("CP_TEST_REDDIT_OAUTH_ID", "test-id");
    std::env::set_var("CP_TEST_REDDIT_OAUTH_SECRET", "test-secret");
    let toml = format!(
        r#"
        [defaults]
        backoff_initial_ms = 20
        backoff_max_ms = 200

        [[host_quota]]
        host = "127.0.0.1"
        requests_per_second = 50
        burst = 10

        [[reddit]]
        name = "reddit_test"
        base_url = "{base}"
        subreddits = ["saigon"]
        client_id_env = "CP_TEST_REDDIT_OAUTH_ID"
        client_secret_env = "CP_TEST_REDDIT_OAUTH_SECRET"
        token_url = "{base}/api/v1/access_token"
        poll_interval_ms = 250
        "#
    );
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&toml, &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    // Long enough for the first token to pass its renewal point twice over.
    tokio::time::sleep(TOKEN_LIFE * 3).await;
    let posts = read_posts(&kafka, 1, Duration::from_millis(500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    let refused = state.refused.lock().unwrap().clone();
    assert!(refused.is_empty(), "listing requests without a valid token: {refused:?}");
    let authorized = *state.authorized.lock().unwrap();
    let issued = state.issued.lock().unwrap().len();
    assert!(authorized >= 8, "polled only {authorized} times");
    assert!(issued >= 3, "tokens issued: {issued} (renewed before expiry, not once per request)");
    assert!((issued as u32) < authorized, "a token per request ({issued} for {authorized})");
    assert!(!posts.is_empty(), "the listing's posts came through");
}
