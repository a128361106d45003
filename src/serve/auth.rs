//! API tokens (`[[serve.token]]`): when any is configured, every `/api/v1` call needs
//! `Authorization: Bearer <token>`, compared in constant time; the token's name (never the token,
//! never the query) is who made the call in the log.

use super::params::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schema::config::services::{ServeToken, TokenRole};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The configured tokens, as digests.
#[derive(Clone, Default)]
pub struct Tokens(Vec<(String, TokenRole, [u8; 32])>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, role, _)| (name, role))).finish()
    }
}

/// A token's SHA-256: tokens are kept and compared only as digests.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether two digests are equal, compared without an early exit, so the time taken says nothing
/// about how much of a token was right.
pub fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, RFC 7235).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Tokens {
    /// Reads each token from its environment variable; one that is unset or empty is an error
    /// (an API meant to be closed must not open because a variable went missing).
    pub fn from_config(config: &[ServeToken], env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        for t in config {
            let value = env(&t.env).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                anyhow::anyhow!("serve.token {:?}: environment variable {} is not set", t.name, t.env)
            })?;
            tokens.push((t.name.clone(), t.role, digest(value.trim())));
        }
        Ok(Tokens(tokens))
    }

    /// Who holds `presented`, if anyone (every token is compared, with [`same_digest`]).
    fn who(&self, presented: &str) -> Option<(&str, TokenRole)> {
        let d = digest(presented);
        let mut found = None;
        for (name, role, want) in &self.0 {
            if same_digest(want, &d) {
                found = Some((name.as_str(), *role));
            }
        }
        found
    }
}

/// Who is calling, for handlers that only some roles may use and for records of who did what:
/// `None` when the API is open (no tokens configured), else the token's name and role. The
/// middleware puts it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub Option<(String, TokenRole)>);

impl Caller {
    /// Whether the caller may do what the `analyst` role may (an open API allows everything).
    pub fn is_analyst(&self) -> bool {
        matches!(self.0, None | Some((_, TokenRole::Analyst)))
    }

    /// The token's name (`[[serve.token]] name`), or "anonymous" on an open API.
    pub fn name(&self) -> &str {
        self.0.as_ref().map_or("anonymous", |(name, _)| name.as_str())
    }
}

/// `GET /api/v1/me`: who the token is and whether it may write (save searches, correct labels),
/// so that the dashboard shows a viewer no form the API would refuse.
pub async fn me(axum::Extension(caller): axum::Extension<Caller>) -> axum::Json<serde_json::Value> {
    let role = match &caller.0 {
        None => "open",
        Some((_, TokenRole::Viewer)) => "viewer",
        Some((_, TokenRole::Analyst)) => "analyst",
    };
    axum::Json(serde_json::json!({ "name": caller.name(), "role": role, "can_write": caller.is_analyst() }))
}

/// The middleware in front of `/api/v1`.
pub async fn require_token(State(tokens): State<Arc<Tokens>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if tokens.0.is_empty() {
        tracing::debug!(path, "api call");
        request.extensions_mut().insert(Caller(None));
        return next.run(request).await;
    }
    match bearer(request.headers()).and_then(|p| tokens.who(p)) {
        Some((name, role)) => {
            tracing::info!(who = name, ?role, path, "api call");
            request.extensions_mut().insert(Caller(Some((name.to_owned(), role))));
            next.run(request).await
        }
        None => {
            tracing::info!(path, "api call refused: no valid token");
            ApiError::unauthorized().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::AUTHORIZATION, "bearer  s3cret ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("s3cret"));
        headers.insert(axum::http::header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn tokens_come_from_the_environment_and_match_exactly() {
        let config = vec![ServeToken { name: "office".into(), env: "T".into(), role: TokenRole::Viewer }];
        let tokens = Tokens::from_config(&config, |_| Some("s3cret".into())).unwrap();
        assert_eq!(tokens.who("s3cret"), Some(("office", TokenRole::Viewer)));
        assert_eq!(tokens.who("s3cre"), None);
        assert!(Tokens::from_config(&config, |_| None).unwrap_err().to_string().contains("T is not set"));
        assert!(!format!("{tokens:?}").contains("s3cret"));
    }
}
