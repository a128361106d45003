//! The shared HTTP client against hostile servers: slow responses time out, bodies over the limit
//! (declared or streamed without end) are cut, rate-limit headers hold the host. Each is a typed
//! error, bounded in time.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use ingest::http::{FetchError, Fetcher};
use ingest::polite::{HostLimiters, QuotaSpec};
use schema::config::sources::SourceDefaults;
use std::time::{Duration, Instant};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn fetcher(timeout_ms: u64, max_bytes: usize) -> Fetcher {
    let defaults =
        SourceDefaults { request_timeout_ms: timeout_ms, max_response_bytes: max_bytes, ..Default::default() };
    Fetcher::new(&defaults, HostLimiters::new(&[], QuotaSpec { requests_per_second: 100.0, burst: 10 })).unwrap()
}

fn url(base: &str, path: &str) -> url::Url {
    url::Url::parse(&format!("{base}{path}")).unwrap()
}

#[tokio::test]
async fn slow_response_times_out() {
    let base = serve(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    ))
    .await;
    let t = Instant::now();
    let err = fetcher(300, 1 << 20).get(&url(&base, "/slow"), &[]).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_even_without_end() {
    // A feed that never ends: chunks forever, no Content-Length.
    let endless = || async { Body::new(Endless) };
    let base =
        serve(Router::new().route("/big", get(|| async { "x".repeat(10_000) })).route("/endless", get(endless))).await;
    let f = fetcher(5000, 4096);
    assert!(matches!(f.get(&url(&base, "/big"), &[]).await, Err(FetchError::TooLarge { max: 4096 })));
    let t = Instant::now();
    assert!(matches!(f.get(&url(&base, "/endless"), &[]).await, Err(FetchError::TooLarge { max: 4096 })));
    assert!(t.elapsed() < Duration::from_secs(3));
}

/// An endless body of 1 KiB chunks.
struct Endless;

impl http_body::Body for Endless {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(axum::body::Bytes::from(vec![b'<'; 1024])))))
    }
}

#[tokio::test]
async fn exhausted_rate_limit_window_holds_the_host() {
    let base = serve(Router::new().route(
        "/limited",
        get(|| async {
            let mut h = HeaderMap::new();
            h.insert("x-ratelimit-remaining", "0".parse().unwrap());
            h.insert("x-ratelimit-reset", "1".parse().unwrap());
            (h, "[]")
        }),
    ))
    .await;
    let f = fetcher(5000, 4096);
    let u = url(&base, "/limited");
    f.get(&u, &[]).await.unwrap();
    let t = Instant::now();
    f.get(&u, &[]).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(950), "second request waited for the reset: {:?}", t.elapsed());
}

#[tokio::test]
async fn client_and_server_errors_are_typed() {
    use axum::http::StatusCode;
    let base = serve(
        Router::new()
            .route("/404", get(|| async { (StatusCode::NOT_FOUND, "no") }))
            .route("/502", get(|| async { (StatusCode::BAD_GATEWAY, "no") }))
            .route(
                "/503",
                get(|| async { ([("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], StatusCode::SERVICE_UNAVAILABLE) }),
            ),
    )
    .await;
    let f = fetcher(5000, 4096);
    assert!(matches!(f.get(&url(&base, "/404"), &[]).await, Err(FetchError::Client(404))));
    assert!(matches!(f.get(&url(&base, "/502"), &[]).await, Err(FetchError::Server(502))));
    // A Retry-After date in the past: rate limited, retry now.
    let err = f.get(&url(&base, "/503"), &[]).await.unwrap_err();
    assert!(matches!(err, FetchError::RateLimited { status: 503, retry_after: Some(d) } if d.is_zero()), "{err}");
    assert!(matches!(f.get(&url("http://127.0.0.1:1", ""), &[]).await, Err(FetchError::Network(_))));
}
