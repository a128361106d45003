//! Author pseudonymisation: handles are kept only as a keyed hash (HMAC-SHA256, truncated to 128
//! bits, hex). The key comes from `CITYPULSE_AUTHOR_KEY` and must be stable so distinct-author counts
//! survive restarts; without the key nobody can test whether a given handle posted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable holding the key.
pub const AUTHOR_KEY_ENV: &str = "CITYPULSE_AUTHOR_KEY";
/// The fixed key `demo` and tests use (never for production: it is public).
pub const DEVELOPMENT_KEY: &str = "citypulse-development-key-not-secret";
/// Shortest accepted key, bytes.
pub const MIN_KEY_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AuthorKeyError {
    #[error("{AUTHOR_KEY_ENV} is not set: services need a stable secret key (at least {MIN_KEY_BYTES} bytes) to pseudonymise author handles, e.g. `export {AUTHOR_KEY_ENV}=$(openssl rand -hex 32)`")]
    Missing,
    #[error("{AUTHOR_KEY_ENV} is {0} bytes; use at least {MIN_KEY_BYTES}")]
    TooShort(usize),
}

/// Hashes author handles with the configured key.
#[derive(Clone)]
pub struct AuthorHasher {
    key: Vec<u8>,
}

impl std::fmt::Debug for AuthorHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorHasher { key: <redacted> }")
    }
}

impl AuthorHasher {
    pub fn new(key: &[u8]) -> Result<Self, AuthorKeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(AuthorKeyError::TooShort(key.len()));
        }
        Ok(Self { key: key.to_vec() })
    }

    /// Reads the key from `CITYPULSE_AUTHOR_KEY`.
    pub fn from_env() -> Result<Self, AuthorKeyError> {
        let key = std::env::var(AUTHOR_KEY_ENV).map_err(|_| AuthorKeyError::Missing)?;
        Self::new(key.as_bytes())
    }

    /// The public development key; callers must log that they use it.
    pub fn development() -> Self {
        Self { key: DEVELOPMENT_KEY.as_bytes().to_vec() }
    }

    /// `source` is part of the input so the same handle on two networks stays two people.
    pub fn pseudonym(&self, source: &str, handle: &str) -> String {
        // new_from_slice accepts keys of any length for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(source.as_bytes());
        mac.update(b"\0");
        mac.update(handle.trim().to_lowercase().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_not_the_handle() {
        let a = AuthorHasher::new(b"0123456789abcdef0123").unwrap();
        let b = AuthorHasher::new(b"another-key-0123456789").unwrap();
        let h = a.pseudonym("mastodon", "@Alice@example.social");
        assert_eq!(h, a.pseudonym("mastodon", "@alice@example.social"));
        assert_ne!(h, b.pseudonym("mastodon", "@alice@example.social"));
        assert_ne!(h, a.pseudonym("reddit", "@alice@example.social"));
        assert_eq!(h.len(), 32);
        assert!(!h.contains("alice"));
    }

    #[test]
    fn short_key_is_refused() {
        assert!(matches!(AuthorHasher::new(b"short"), Err(AuthorKeyError::TooShort(5))));
    }
}
