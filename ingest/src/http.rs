//! [`Fetcher`]: every HTTP GET of every source goes through here, so the host quota, the server's
//! hints (Retry-After, rate-limit headers), the timeout and the body size limit apply everywhere.

use crate::polite::headers::{rate_limit_wait, retry_after_header};
use crate::polite::HostLimiters;
use chrono::Utc;
use reqwest::header::HeaderMap;
use schema::config::sources::SourceDefaults;
use std::sync::Arc;
use std::time::Duration;

/// A successful response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why a request gave no usable response. Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("rate limited (HTTP {status}), retry after {retry_after:?}")]
    RateLimited { status: u16, retry_after: Option<Duration> },
    #[error("server error HTTP {0}")]
    Server(u16),
    #[error("client error HTTP {0}")]
    Client(u16),
    #[error("request timed out")]
    Timeout,
    #[error("network error: {0}")]
    Network(String),
    #[error("response body over the limit of {max} bytes")]
    TooLarge { max: usize },
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

impl FetchError {
    /// Short stable name for the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Server(_) => "http_5xx",
            FetchError::Client(_) => "http_4xx",
            FetchError::Timeout => "timeout",
            FetchError::Network(_) => "network",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Setup(_) => "setup",
        }
    }

    /// The server's own idea of when to come back.
    pub fn retry_hint(&self) -> Option<Duration> {
        match self {
            FetchError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The shared HTTP client of all sources.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    limiters: Arc<HostLimiters>,
    max_bytes: usize,
}

impl Fetcher {
    pub fn new(defaults: &SourceDefaults, limiters: Arc<HostLimiters>) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(defaults.user_agent.clone())
            .timeout(Duration::from_millis(defaults.request_timeout_ms))
            .connect_timeout(Duration::from_millis(defaults.request_timeout_ms))
            // Feeds move (http to https, new paths); follow a few. Only the first host's quota is taken.
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
        Ok(Fetcher { client, limiters, max_bytes: defaults.max_response_bytes })
    }

    pub fn limiters(&self) -> &Arc<HostLimiters> {
        &self.limiters
    }

    /// GET `url` once: waits for the host's quota, applies the server's hints to the whole host.
    pub async fn get(&self, url: &url::Url, headers: &[(&str, String)]) -> Result<Response, FetchError> {
        let mut request = self.client.get(url.clone());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        self.send(url, request).await
    }

    /// POST a form to `url` with HTTP basic authentication (OAuth token endpoints), under the
    /// same quota and hints as [`Fetcher::get`].
    pub async fn post_form(
        &self,
        url: &url::Url,
        (user, password): (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<Response, FetchError> {
        let request = self.client.post(url.clone()).basic_auth(user, Some(password)).form(form);
        self.send(url, request).await
    }

    async fn send(&self, url: &url::Url, request: reqwest::RequestBuilder) -> Result<Response, FetchError> {
        self.limiters.acquire(url).await;
        let mut resp = request.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let now = Utc::now();
        if let Some(wait) = rate_limit_wait(resp.headers(), now) {
            tracing::info!(host = %HostLimiters::key(url), wait_ms = wait.as_millis() as u64, "rate-limit window used up; holding the host");
            self.limiters.hold(url, wait);
        }
        if status == 429 || status == 503 {
            let retry_after = retry_after_header(resp.headers(), now);
            if let Some(wait) = retry_after {
                self.limiters.hold(url, wait);
            }
            if status == 429 || retry_after.is_some() {
                return Err(FetchError::RateLimited { status, retry_after });
            }
        }
        match status {
            // 304 answers a conditional GET: nothing new, nothing to read.
            200..=299 | 304 => {}
            500..=599 => return Err(FetchError::Server(status)),
            _ => return Err(FetchError::Client(status)),
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(FetchError::TooLarge { max: self.max_bytes });
        }
        let headers = resp.headers().clone();
        // Read in chunks so a body that never ends is cut at the limit, not buffered whole.
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge { max: self.max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Network(e.to_string())
    }
}
