//! How a Reddit source authenticates: not at all (10 requests a minute), with a ready bearer token
//! from the environment, or app-only OAuth — the client credentials grant, the app's id and secret
//! from the environment, the token fetched from `token_url` and renewed before it expires. The
//! streams of one source share one token.

use crate::http::{FetchError, Fetcher};
use schema::config::sources::RedditSource;
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio::time::{Duration, Instant};

/// A token is renewed when less than this much of its life is left (or half of it, for short
/// lives), so no request goes out with one that expires on the way.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum RedditAuth {
    Anonymous,
    Bearer(String),
    App(Arc<AppToken>),
}

impl RedditAuth {
    /// From the source's config and the environment. A variable that is named but not set is
    /// logged and the source reads anonymously rather than not at all.
    pub fn from_config(config: &RedditSource) -> RedditAuth {
        let env = |var: &Option<String>| {
            let var = var.as_ref()?;
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
                _ => {
                    tracing::warn!(source = %config.name, env = %var, "environment variable is not set; reading Reddit without OAuth");
                    None
                }
            }
        };
        if config.client_id_env.is_some() {
            return match (env(&config.client_id_env), env(&config.client_secret_env)) {
                (Some(client_id), Some(secret)) => RedditAuth::App(Arc::new(AppToken {
                    client_id,
                    secret,
                    token_url: config.token_url.clone(),
                    cached: Mutex::new(None),
                })),
                _ => RedditAuth::Anonymous,
            };
        }
        env(&config.oauth_token_env).map_or(RedditAuth::Anonymous, RedditAuth::Bearer)
    }

    /// The `Authorization` header value for the next request, if any.
    pub async fn header(&self, fetcher: &Fetcher) -> Result<Option<String>, FetchError> {
        match self {
            RedditAuth::Anonymous => Ok(None),
            RedditAuth::Bearer(t) => Ok(Some(format!("bearer {t}"))),
            RedditAuth::App(app) => Ok(Some(format!("bearer {}", app.token(fetcher).await?))),
        }
    }

    /// The server refused the token (401): the next request fetches a new one.
    pub async fn refused(&self) {
        if let RedditAuth::App(app) = self {
            *app.cached.lock().await = None;
        }
    }
}

/// An app-only token and when to renew it.
#[derive(Debug)]
pub struct AppToken {
    client_id: String,
    secret: String,
    token_url: url::Url,
    cached: Mutex<Option<(String, Instant)>>,
}

/// Reddit's token response (`token_type` is always `bearer`).
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl AppToken {
    async fn token(&self, fetcher: &Fetcher) -> Result<String, FetchError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref() {
            if Instant::now() < *renew_at {
                return Ok(token.clone());
            }
        }
        let form = [("grant_type", "client_credentials")];
        let response = fetcher.post_form(&self.token_url, (&self.client_id, &self.secret), &form).await?;
        let parsed: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|e| FetchError::Network(format!("token response from {} unreadable: {e}", self.token_url)))?;
        let life = Duration::from_secs(parsed.expires_in);
        let renew_at = Instant::now() + life.saturating_sub(RENEW_BEFORE.min(life / 2));
        tracing::info!(token_url = %self.token_url, expires_in_s = parsed.expires_in, "Reddit app-only token fetched");
        *cached = Some((parsed.access_token.clone(), renew_at));
        Ok(parsed.access_token)
    }
}
