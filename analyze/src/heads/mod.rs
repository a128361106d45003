//! Heads over the sentence embedding.
//!
//! - [`mlp`]: a small MLP (or linear) classifier stored as JSON, with temperature calibration.
//! - [`train`]: training such a head with candle-nn (AdamW, weighted cross-entropy, seeded).
//! - [`topics`]: topic prototypes from config/topics.toml, centred, combined with a trained head.

pub mod mlp;
pub mod topics;
pub mod train;

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("cannot read head {path}: {message} (train one with `citypulse train-head`)")]
    Load { path: String, message: String },
    #[error("head {path} is malformed: {message}")]
    Malformed { path: String, message: String },
    #[error("training failed: {0}")]
    Train(String),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}
