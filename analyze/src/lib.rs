//! Analyze: turns raw posts into labelled, redacted posts.
//!
//! - [`text`]: NFC normalisation, text given to the model (URLs, mentions, hashtags), language
//!   detection (including Vietnamese without diacritics), PII redaction.
//! - [`tokenize`]: posts to token ids (e5 "query: " prefix, truncation).
//! - [`backend`]: the encoder backends behind one synchronous trait (candle; onnx with the feature).
//! - [`encoder`]: length-sorted, token-budgeted batching and mean pooling.
//! - [`cache`]: embeddings cached on disk for training runs.
//! - [`heads`]: the sentiment MLP head, topic prototypes, training.
//! - [`classifier`]: loading everything from the model folder and labelling texts.
//! - [`service`]: [`run`], the analyze stage's entry point: the Kafka consumer → batcher → model
//!   threads → producer loop.
//! - [`labelled`]: the labelled TSV format read by `eval` and `train-head`.
//! - [`metrics`]: accuracy, macro-F1, per-class scores, confusion matrices.

pub mod adapter;
pub mod backend;
pub mod cache;
pub mod classifier;
pub mod encoder;
pub mod heads;
pub mod labelled;
pub mod metrics;
pub mod service;
pub mod text;
pub mod tokenize;

pub use classifier::{Analysis, Classifier, ClassifierError, EmbeddingPolicy, Labels, ModelOptions};
pub use service::{run, AnalyzeDeps, AnalyzeSettings, AnalyzeStats};
