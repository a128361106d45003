//! Telemetry, set up once per process: tracing (human or JSON), the Prometheus recorder with its
//! `/metrics` endpoint and a `/healthz` endpoint (reporting [`stagekit::Health`]), and the cancellation token that SIGINT/SIGTERM
//! trigger and every stage receives.

use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use schema::config::services::{LogFormat, TelemetryConfig};
use stagekit::Health;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Installs the tracing subscriber. `RUST_LOG` wins over the configured level. Logs go to stderr so
/// commands that print data (classify, trends) keep stdout clean.
pub fn init_logging(config: &TelemetryConfig, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new().install_recorder().unwrap_or_else(|_| {
            // Another recorder is already installed (tests): keep a detached one so /metrics works.
            PrometheusBuilder::new().build_recorder().handle()
        })
    })
}

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown`. Returns the bound address (so
/// port 0 works in tests) and the server task.
pub async fn serve_metrics(
    addr: SocketAddr,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let handle = prometheus().clone();
    let app = Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(healthz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(err) = result {
            tracing::error!(%err, "metrics server failed");
        }
    });
    tracing::info!(%bound, "serving /metrics and /healthz");
    Ok((bound, task))
}

pub async fn healthz(State(health): State<Health>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let (healthy, body) = health.report();
    (if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, axum::Json(body))
}

/// A token cancelled on the first SIGINT or SIGTERM; a second signal exits at once.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining (send the signal again to exit now)");
        trigger.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_and_health_are_served_and_health_follows_components() {
        let health = Health::default();
        let store = health.stage(stagekit::StageName::Store);
        store.set_ok("kafka");
        let shutdown = CancellationToken::new();
        let (addr, task) =
            serve_metrics("127.0.0.1:0".parse().unwrap(), health.clone(), shutdown.clone()).await.unwrap();
        metrics::counter!("citypulse_test_events_total").increment(3);
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("citypulse_test_events_total 3"), "{metrics}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        store.set_unhealthy("clickhouse", "unreachable for 61 s");
        let unhealthy = get(addr, "/healthz").await;
        assert!(unhealthy.starts_with("HTTP/1.1 503") && unhealthy.contains("unreachable for 61 s"), "{unhealthy}");
        assert!(unhealthy.contains(r#""failing":["store"]"#), "{unhealthy}");
        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap();
    }
}
