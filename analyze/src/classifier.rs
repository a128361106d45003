//! The classifier: prepares the text, runs one encoder pass per post, and applies the sentiment
//! head and the topic model. Used by `classify`, `eval`, `train-head` and the analyze service.

use crate::backend::{candle::CandleBackend, Backend, BackendError};
use crate::encoder::{Embedding, EncodeError, Encoder};
use crate::heads::{mlp::MlpHead, topics, topics::TopicModel, HeadError};
use crate::text;
use crate::tokenize::{PostTokenizer, TokenizeError};
use schema::config::services::{AnalyzeConfig, BackendKind, Precision};
use schema::config::TopicsConfig;
use schema::{Lang, ModelInfo, Sentiment, SentimentLabel, SentimentProbabilities, TopicId, TopicScore};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Relative paths inside `heads_dir`.
pub const SENTIMENT_HEAD: &str = "sentiment/head.json";
pub const TOPIC_HEAD: &str = "topic/head.json";

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("model folder {0} is missing {1} (run scripts/fetch-model.sh)")]
    MissingModel(String, &'static str),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Adapter(#[from] crate::adapter::AdapterError),
    #[error("head {path} was trained on encoder {found:?}, not {expected:?}: retrain it")]
    WrongEncoder { path: String, found: String, expected: String },
}

/// Where the model files are and how to run them (from `[analyze]` plus command-line overrides).
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// The folder the backends load: the plain model, or the tuned one when `adapter` is set.
    pub model_dir: PathBuf,
    /// The heads trained on that encoder.
    pub heads_dir: PathBuf,
    /// The adapter merged into `model_dir` (None: the plain encoder).
    pub adapter: Option<PathBuf>,
    pub onnxruntime_path: PathBuf,
    pub backend: BackendKind,
    pub precision: Precision,
    pub threads: usize,
    /// Backends that take batches in parallel (onnx, at most `threads`; candle always has one).
    pub workers: usize,
    pub max_seq_tokens: usize,
    pub batch_max_tokens: usize,
}

impl ModelOptions {
    pub fn from_config(c: &AnalyzeConfig) -> Self {
        let onnxruntime_path =
            std::env::var_os("ORT_DYLIB_PATH").map_or_else(|| c.onnxruntime_path.clone(), PathBuf::from);
        let plain = c.adapter.as_os_str() == "none";
        ModelOptions {
            model_dir: if plain { c.model_dir.clone() } else { c.tuned_model_dir.clone() },
            heads_dir: if plain { c.heads_dir.clone() } else { c.tuned_heads_dir.clone() },
            adapter: (!plain).then(|| c.adapter.clone()),
            onnxruntime_path,
            backend: c.backend,
            precision: c.precision,
            threads: c.threads,
            workers: c.workers,
            max_seq_tokens: c.max_seq_tokens,
            batch_max_tokens: c.batch_max_tokens,
        }
    }

    /// The backend that `auto` means in this build.
    pub fn resolved_backend(&self) -> BackendKind {
        match self.backend {
            BackendKind::Auto if cfg!(feature = "onnx") => BackendKind::Onnx,
            BackendKind::Auto => BackendKind::Candle,
            other => other,
        }
    }

    /// The encoder's identity: heads record it and refuse to run on another one.
    pub fn encoder_id(&self) -> String {
        match &self.adapter {
            None => crate::adapter::PLAIN_ENCODER_ID.into(),
            Some(_) => crate::adapter::tuned_encoder_id(&self.model_dir),
        }
    }
}

/// Loads the configured backend.
pub fn load_backend(opts: &ModelOptions) -> Result<Box<dyn Backend>, ClassifierError> {
    for file in ["config.json", "tokenizer.json"] {
        if !opts.model_dir.join(file).exists() {
            return Err(ClassifierError::MissingModel(opts.model_dir.display().to_string(), file));
        }
    }
    match opts.resolved_backend() {
        BackendKind::Onnx => load_onnx(opts),
        BackendKind::Torch => load_torch(opts),
        // candle's CPU kernels size their own thread pools (see CandleBackend::load).
        _ => Ok(Box::new(CandleBackend::load(&opts.model_dir, opts.threads)?)),
    }
}

#[cfg(feature = "onnx")]
fn load_onnx(opts: &ModelOptions) -> Result<Box<dyn Backend>, ClassifierError> {
    let file = match opts.precision {
        Precision::Fp32 => "model.onnx",
        Precision::Int8 => "model.int8.onnx",
    };
    let path = opts.model_dir.join(file);
    if !path.exists() {
        return Err(ClassifierError::MissingModel(opts.model_dir.display().to_string(), file));
    }
    Ok(Box::new(crate::backend::onnx::OnnxBackend::load(&opts.onnxruntime_path, &path, opts.threads)?))
}

#[cfg(not(feature = "onnx"))]
fn load_onnx(_: &ModelOptions) -> Result<Box<dyn Backend>, ClassifierError> {
    Err(BackendError::NotBuilt { backend: "onnx", how: "`--features onnx`" }.into())
}

#[cfg(feature = "torch")]
fn load_torch(opts: &ModelOptions) -> Result<Box<dyn Backend>, ClassifierError> {
    Ok(Box::new(crate::backend::torch::TorchBackend::load(&opts.model_dir, opts.threads)?))
}

#[cfg(not(feature = "torch"))]
fn load_torch(_: &ModelOptions) -> Result<Box<dyn Backend>, ClassifierError> {
    // torch also needs libtorch, which `make build-torch` fetches.
    let how = "`--features torch` (`make build-torch` fetches libtorch and builds it)";
    Err(BackendError::NotBuilt { backend: "torch", how }.into())
}

/// Loads tokenizer + backends: `workers` onnx sessions or torch models sharing `threads` (torch's
/// count is process-wide: the last worker loaded sets it), or one candle model (its thread pools are
/// process-wide and sized once).
pub fn load_encoder(opts: &ModelOptions) -> Result<Encoder, ClassifierError> {
    // Once, not per worker: it hashes the adapter file.
    if let Some(adapter) = &opts.adapter {
        crate::adapter::check_merged(&opts.model_dir, adapter)?;
    }
    let tokenizer = PostTokenizer::load(&opts.model_dir.join("tokenizer.json"), opts.max_seq_tokens)?;
    let workers = match opts.resolved_backend() {
        BackendKind::Onnx | BackendKind::Torch => opts.workers.clamp(1, opts.threads.max(1)),
        _ => 1,
    };
    // An uneven split gives the first workers one thread more: every thread is used.
    let threads = |i: usize| (opts.threads / workers + usize::from(i < opts.threads % workers)).max(1);
    let backends = (0..workers)
        .map(|i| load_backend(&ModelOptions { threads: threads(i), ..opts.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Encoder::new(tokenizer, backends, opts.batch_max_tokens))
}

/// The text the encoder sees for a post: normalised, PII removed (nothing personal reaches the
/// model or its logs), URLs, mentions and hashtags rewritten.
pub fn prepare(post_text: &str) -> String {
    text::prepare_for_model(&redacted(&text::normalize(post_text)))
}

/// Normalised text with PII removed: what `text_redacted` holds and what [`prepare`] starts from.
fn redacted(normalized: &str) -> String {
    text::redact(normalized).text
}

/// What a post's text gives without the model: computed where the posts arrive, so the model
/// thread only runs forward passes (the analyze service).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedText {
    pub text_redacted: String,
    pub lang: Lang,
    /// Token ids of [`prepare`]d text.
    pub tokens: Vec<u32>,
}

/// Normalises, redacts, detects the language and tokenises once.
pub fn prepare_text(tokenizer: &PostTokenizer, post_text: &str) -> Result<PreparedText, TokenizeError> {
    let normalized = text::normalize(post_text);
    let text_redacted = redacted(&normalized);
    let tokens = tokenizer.encode(&text::prepare_for_model(&text_redacted))?;
    Ok(PreparedText { lang: text::detect_language(&normalized), text_redacted, tokens })
}

/// The labels the model gives one post.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    pub sentiment: Sentiment,
    pub topics: Vec<TopicScore>,
    /// Best configured topic regardless of thresholds (for evaluation).
    pub best_topic: TopicId,
    /// Centred cosine to the nearest topic prototype (see [`crate::heads::topics::TopicScores`]).
    pub best_cosine: f32,
    /// The post's embedding, quantised (kept for posts no topic claims; see [`EmbeddingPolicy`]).
    pub embedding: schema::Int8Embedding,
}

/// Which analysed posts carry their embedding to the store (`[emerging]` in citypulse.toml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbeddingPolicy {
    /// Attach embeddings at all.
    pub keep: bool,
    /// A post whose nearest prototype is below this centred cosine counts as unclaimed even when a
    /// topic passed its threshold (scores are relative: with few topics one always passes).
    pub claim_cosine: f32,
}

impl EmbeddingPolicy {
    /// Whether no topic claims the post with confidence: `other`, or far from every prototype.
    pub fn unclaimed(&self, labels: &Labels) -> bool {
        self.keep
            && (labels.topics.first().is_none_or(|t| t.id == TopicId::other())
                || labels.best_cosine < self.claim_cosine)
    }
}

/// Embeds posts, taking what it can from `cache` and adding the rest to it.
pub fn embed_cached(
    encoder: &mut Encoder,
    mut cache: Option<&mut crate::cache::EmbeddingCache>,
    texts: &[&str],
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Embedding>, ClassifierError> {
    let prepared: Vec<String> = texts.iter().map(|t| prepare(t)).collect();
    let missing: Vec<usize> =
        (0..prepared.len()).filter(|&i| cache.as_ref().is_none_or(|c| c.get(&prepared[i]).is_none())).collect();
    let cached = prepared.len() - missing.len();
    let refs: Vec<&str> = missing.iter().map(|&i| prepared[i].as_str()).collect();
    let fresh = encoder.embed(&refs, &mut |done| progress(cached + done))?;
    let mut out: Vec<Option<Embedding>> = vec![None; prepared.len()];
    for (&i, e) in missing.iter().zip(&fresh) {
        out[i] = Some(e.clone());
    }
    if let Some(c) = cache.as_mut() {
        let _ = c.extend(missing.iter().map(|&i| prepared[i].clone()).zip(fresh));
        for (i, slot) in out.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = c.get(&prepared[i]).cloned();
            }
        }
    }
    progress(prepared.len());
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// What the classifier says about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub text_redacted: String,
    pub lang: Lang,
    pub sentiment: Sentiment,
    pub topics: Vec<TopicScore>,
    /// Best configured topic regardless of thresholds (for evaluation).
    pub best_topic: TopicId,
}

/// Encoder + heads.
pub struct Classifier {
    encoder: Encoder,
    sentiment: MlpHead,
    topics: TopicModel,
    model: ModelInfo,
}

impl Classifier {
    /// Loads the encoder and heads and builds topic prototypes from `topics`.
    pub fn load(opts: &ModelOptions, topics_config: &TopicsConfig) -> Result<Self, ClassifierError> {
        let encoder = load_encoder(opts)?;
        Self::with_encoder(encoder, opts, topics_config)
    }

    pub fn with_encoder(
        mut encoder: Encoder,
        opts: &ModelOptions,
        topics_config: &TopicsConfig,
    ) -> Result<Self, ClassifierError> {
        let sentiment_path = opts.heads_dir.join(SENTIMENT_HEAD);
        let sentiment = load_head(&sentiment_path, &opts.encoder_id())?;
        let topic_path = opts.heads_dir.join(TOPIC_HEAD);
        let topic_head = if topic_path.exists() { Some(load_head(&topic_path, &opts.encoder_id())?) } else { None };
        let center = topic_head.as_ref().map_or_else(|| sentiment.center.clone(), |h| h.center.clone());
        // All topics' texts in one call: batched by length together, not topic by topic.
        let texts = topics::prototype_texts(topics_config);
        let prepared: Vec<String> = texts.iter().flatten().map(|t| text::prepare_for_model(t)).collect();
        let refs: Vec<&str> = prepared.iter().map(String::as_str).collect();
        let mut flat = encoder.embed(&refs, &mut |_| {})?.into_iter();
        let embeddings: Vec<Vec<Embedding>> = texts.iter().map(|g| flat.by_ref().take(g.len()).collect()).collect();
        let topics = TopicModel::build(topics_config, &embeddings, center, topic_head);
        let model = ModelInfo { id: opts.encoder_id(), version: version(&opts.heads_dir, topics_config) };
        Ok(Self { encoder, sentiment, topics, model })
    }

    pub fn model(&self) -> &ModelInfo {
        &self.model
    }

    pub fn backend_name(&self) -> String {
        self.encoder.backend_name()
    }

    /// How many backends take batches in parallel.
    pub fn workers(&self) -> usize {
        self.encoder.workers()
    }

    /// One classifier per backend (same heads and topics), for one model thread each.
    pub fn into_workers(self) -> Vec<Classifier> {
        let Self { encoder, sentiment, topics, model } = self;
        encoder
            .into_workers()
            .into_iter()
            .map(|encoder| Classifier {
                encoder,
                sentiment: sentiment.clone(),
                topics: topics.clone(),
                model: model.clone(),
            })
            .collect()
    }

    /// Embeddings of posts (prepared as for classification).
    pub fn embed(
        &mut self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Embedding>, ClassifierError> {
        embed_cached(&mut self.encoder, None, texts, progress)
    }

    /// The tokenizer, for tokenising off the model thread (the service does).
    pub fn tokenizer(&self) -> &PostTokenizer {
        self.encoder.tokenizer()
    }

    /// Labels posts from their [`PreparedText::tokens`]: forward passes and heads only.
    pub fn label_tokens(&mut self, tokens: &[&[u32]]) -> Result<Vec<Labels>, ClassifierError> {
        let embeddings = self.encoder.embed_tokens(tokens, &mut |_| {})?;
        Ok(embeddings.iter().map(|e| self.labels(e)).collect())
    }

    /// Classifies `texts` in one batched pass; output in input order. Each text is normalised,
    /// redacted and tokenised once ([`prepare_text`]).
    pub fn classify(
        &mut self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Analysis>, ClassifierError> {
        let tokenizer = self.encoder.tokenizer();
        let prepared = texts.iter().map(|t| prepare_text(tokenizer, t)).collect::<Result<Vec<_>, _>>()?;
        let tokens: Vec<&[u32]> = prepared.iter().map(|p| p.tokens.as_slice()).collect();
        let embeddings = self.encoder.embed_tokens(&tokens, progress)?;
        Ok(prepared
            .into_iter()
            .zip(embeddings)
            .map(|(p, e)| {
                let labels = self.labels(&e);
                Analysis {
                    text_redacted: p.text_redacted,
                    lang: p.lang,
                    sentiment: labels.sentiment,
                    topics: labels.topics,
                    best_topic: labels.best_topic,
                }
            })
            .collect())
    }

    fn labels(&self, embedding: &[f32]) -> Labels {
        let p = self.sentiment.probabilities(embedding);
        let prob = |label: SentimentLabel| {
            self.sentiment.labels.iter().position(|l| l == label.as_str()).map_or(0.0, |i| p[i])
        };
        let probabilities = SentimentProbabilities {
            negative: prob(SentimentLabel::Negative),
            neutral: prob(SentimentLabel::Neutral),
            positive: prob(SentimentLabel::Positive),
        };
        let topics = self.topics.classify(embedding);
        Labels {
            sentiment: Sentiment::from_probabilities(probabilities),
            topics: topics.ranked,
            best_topic: topics.best,
            best_cosine: topics.best_cosine,
            embedding: schema::Int8Embedding::quantise(embedding),
        }
    }
}

fn load_head(path: &Path, encoder: &str) -> Result<MlpHead, ClassifierError> {
    let head = MlpHead::load(path)?;
    if head.encoder != encoder {
        return Err(ClassifierError::WrongEncoder {
            path: path.display().to_string(),
            found: head.encoder,
            expected: encoder.to_owned(),
        });
    }
    Ok(head)
}

/// A short version string that changes whenever a head or the topic definitions change.
fn version(heads_dir: &Path, topics: &TopicsConfig) -> String {
    let mut hasher = Sha256::new();
    for file in [SENTIMENT_HEAD, TOPIC_HEAD] {
        if let Ok(bytes) = std::fs::read(heads_dir.join(file)) {
            hasher.update(&bytes);
        }
    }
    for t in &topics.topic {
        hasher.update(t.id.as_str());
        hasher.update(&t.description_vi);
        hasher.update(&t.description_en);
        t.examples.iter().for_each(|e| hasher.update(e));
        hasher.update(t.threshold.to_le_bytes());
    }
    format!("e5s-heads-{}", &hex::encode(hasher.finalize())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(first: &str, best_cosine: f32) -> Labels {
        let p = SentimentProbabilities { negative: 0.2, neutral: 0.5, positive: 0.3 };
        Labels {
            sentiment: Sentiment::from_probabilities(p),
            topics: vec![TopicScore { id: TopicId::new(first).unwrap(), score: 0.6 }],
            best_topic: TopicId::new("traffic").unwrap(),
            best_cosine,
            embedding: schema::Int8Embedding(vec![1, 2, 3]),
        }
    }

    #[test]
    fn a_post_is_unclaimed_when_other_or_far_from_every_prototype() {
        let policy = EmbeddingPolicy { keep: true, claim_cosine: 0.3 };
        assert!(policy.unclaimed(&labels("other", 0.9)), "other, however close");
        assert!(policy.unclaimed(&labels("traffic", 0.29)), "a topic passed, but far from its prototype");
        assert!(!policy.unclaimed(&labels("traffic", 0.3)), "claimed");
        assert!(!EmbeddingPolicy { keep: false, ..policy }.unclaimed(&labels("other", 0.0)), "kept off");
    }
}
