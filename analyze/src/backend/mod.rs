//! Encoder backends behind one small synchronous trait (the design of text-embeddings-inference):
//! a backend turns a padded batch of token ids into the last hidden state; pooling is shared code
//! so every backend pools the same way.
//!
//! - [`candle`]: pure Rust ([`bert`]'s forward pass in candle), always built.
//! - `onnx` (cargo feature `onnx`): ONNX Runtime loaded at run time; the faster one on CPU.
//! - `torch` (cargo feature `torch`): rust-bert's BERT over libtorch, for sites that run libtorch.

pub mod bert;
pub mod candle;
mod gelu;
pub mod lora;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "torch")]
pub mod torch;

/// Hidden width of multilingual-e5-small.
pub const HIDDEN: usize = 384;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot load the model from {path}: {message}")]
    Load { path: String, message: String },
    #[error("forward pass failed: {0}")]
    Forward(String),
    /// A backend this build lacks, and how to build it in.
    #[error("backend {backend} is not built in; rebuild with {how}")]
    NotBuilt { backend: &'static str, how: &'static str },
}

/// A padded batch: `ids` and `mask` are `rows × seq_len`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    pub rows: usize,
    pub seq_len: usize,
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
}

impl PaddedBatch {
    /// Pads `sequences` to the longest one with `pad_id` (mask 0).
    pub fn new(sequences: &[&[u32]], pad_id: u32) -> Self {
        let seq_len = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let rows = sequences.len();
        let mut ids = Vec::with_capacity(rows * seq_len);
        let mut mask = Vec::with_capacity(rows * seq_len);
        for seq in sequences {
            ids.extend(seq.iter().map(|&t| i64::from(t)));
            ids.extend(std::iter::repeat_n(i64::from(pad_id), seq_len - seq.len()));
            mask.extend(std::iter::repeat_n(1, seq.len()));
            mask.extend(std::iter::repeat_n(0, seq_len - seq.len()));
        }
        PaddedBatch { rows, seq_len, ids, mask }
    }
}

/// One encoder. Synchronous: the caller owns the thread it runs on.
pub trait Backend: Send {
    /// Short name for logs and metrics (`candle`, `onnx-fp32`, `onnx-int8`).
    fn name(&self) -> String;

    /// Last hidden state, `rows × seq_len × HIDDEN`, row-major.
    fn hidden_states(&mut self, batch: &PaddedBatch) -> Result<Vec<f32>, BackendError>;
}

/// Mean over the tokens the mask keeps, then L2 normalisation (the e5 convention).
pub fn mean_pool_normalise(hidden: &[f32], batch: &PaddedBatch) -> Vec<Vec<f32>> {
    let (rows, seq) = (batch.rows, batch.seq_len);
    (0..rows)
        .map(|r| {
            let mut sum = vec![0f32; HIDDEN];
            for t in 0..seq {
                if batch.mask[r * seq + t] == 0 {
                    continue;
                }
                let start = (r * seq + t) * HIDDEN;
                for (acc, v) in sum.iter_mut().zip(&hidden[start..start + HIDDEN]) {
                    *acc += v;
                }
            }
            // Normalising the sum equals normalising the mean: the token count cancels.
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            sum.iter().map(|v| v / norm).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_mask() {
        let b = PaddedBatch::new(&[&[0, 5, 2], &[0, 2]], 1);
        assert_eq!((b.rows, b.seq_len), (2, 3));
        assert_eq!(b.ids, vec![0, 5, 2, 0, 2, 1]);
        assert_eq!(b.mask, vec![1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn pooling_ignores_padding_and_normalises() {
        let b = PaddedBatch::new(&[&[0, 2]], 1);
        let b = PaddedBatch { seq_len: 3, ids: vec![0, 2, 1], mask: vec![1, 1, 0], ..b };
        let mut hidden = vec![0f32; 3 * HIDDEN];
        hidden[0] = 1.0; // token 0, dim 0
        hidden[HIDDEN + 1] = 1.0; // token 1, dim 1
        hidden[2 * HIDDEN + 2] = 100.0; // padding: must not count
        let e = &mean_pool_normalise(&hidden, &b)[0];
        assert!((e[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((e[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(e[2], 0.0);
    }
}
