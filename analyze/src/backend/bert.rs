//! A BERT encoder forward pass in candle, for the candle backend.
//!
//! Why not candle-transformers' `BertModel` (which loads the same weights): profiling it on this
//! model (2 cores) showed ~20% of the time in its GELU — `erf` element by element on one thread —
//! and ~8% in a softmax composed of separate exp/sum/div passes. This file computes the same
//! function with one fused Q·K·V projection, candle-nn's fused last-dimension softmax and layer
//! norm, and a vectorised GELU on candle's worker pool ([`super::gelu`]).
//! Weights keep the HF BertModel names, so any HF BERT folder loads.

use super::gelu::GeluErf;
use super::lora::{LoraTerm, LoraWeights, Projection};
use candle_core::{DType, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

/// The fields of an HF BERT `config.json` the forward pass needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
}

fn gelu() -> String {
    "gelu".into()
}

struct Layer {
    /// Query, key and value projections stacked into one [3·hidden, hidden] matrix.
    qkv: Linear,
    /// An unmerged adapter's low-rank terms for query, key and value (see [`super::lora`]).
    qkv_lora: Option<[LoraTerm; 3]>,
    attention_out: Projection,
    attention_norm: LayerNorm,
    intermediate: Projection,
    output: Projection,
    output_norm: LayerNorm,
}

pub struct BertEncoder {
    words: Embedding,
    positions: Embedding,
    /// Token type 0's embedding (posts are single segments).
    type0: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
}

impl BertEncoder {
    pub fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        Self::load_adapted(vb, config, None)
    }

    /// The encoder with a low-rank adapter applied beside the weights instead of merged into them.
    pub fn load_adapted(
        vb: VarBuilder,
        config: &BertConfig,
        adapter: Option<&LoraWeights>,
    ) -> candle_core::Result<Self> {
        if config.hidden_act != "gelu" {
            candle_core::bail!("hidden_act {:?} is not supported (only \"gelu\")", config.hidden_act);
        }
        // Some exports prefix every weight with "bert.".
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") { vb } else { vb.pp("bert") };
        let h = config.hidden_size;
        let e = vb.pp("embeddings");
        let types = embedding(config.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| load_layer(vb.pp(format!("encoder.layer.{i}")), config, adapter, &format!("encoder.layer.{i}")))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            words: embedding(config.vocab_size, h, e.pp("word_embeddings"))?,
            positions: embedding(config.max_position_embeddings, h, e.pp("position_embeddings"))?,
            type0: types.embeddings().get(0)?,
            embeddings_norm: layer_norm(h, config.layer_norm_eps, e.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads,
        })
    }

    /// The last hidden state [batch, seq, hidden] for `ids` and `mask` ([batch, seq], u32).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let positions = Tensor::arange(0u32, seq as u32, ids.device())?;
        let x = self.words.forward(ids)?.broadcast_add(&self.positions.forward(&positions)?)?;
        let mut x = self.embeddings_norm.forward(&x.broadcast_add(&self.type0)?)?;
        // 0 where attended, the most negative f32 where padded (as HF and candle-transformers do).
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * f64::from(f32::MAX))?.unsqueeze(1)?.unsqueeze(1)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &bias)?;
        }
        Ok(x)
    }

    fn layer(&self, l: &Layer, x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let dh = h / self.heads;
        // [b, s, 3h] → [3, b, heads, s, dh]
        let mut qkv = l.qkv.forward(x)?;
        if let Some(terms) = &l.qkv_lora {
            let deltas = terms.iter().map(|t| t.forward(x)).collect::<candle_core::Result<Vec<_>>>()?;
            qkv = (qkv + Tensor::cat(&deltas, 2)?)?;
        }
        let qkv = qkv.reshape((b, s, 3, self.heads, dh))?.permute((2, 0, 3, 1, 4))?;
        let q = (qkv.get(0)?.contiguous()? / (dh as f64).sqrt())?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let x = l.attention_norm.forward(&(l.attention_out.forward(&context)? + x)?)?;
        let inner = l.intermediate.forward(&x)?.apply_op1_no_bwd(&GeluErf)?;
        l.output_norm.forward(&(l.output.forward(&inner)? + x)?)
    }
}

fn load_layer(
    vb: VarBuilder,
    config: &BertConfig,
    adapter: Option<&LoraWeights>,
    prefix: &str,
) -> candle_core::Result<Layer> {
    let h = config.hidden_size;
    let att = vb.pp("attention");
    let part = |name: &str| -> candle_core::Result<(Tensor, Tensor)> {
        let p = att.pp("self").pp(name);
        Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
    };
    let (q, k, v) = (part("query")?, part("key")?, part("value")?);
    let qkv = Linear::new(Tensor::cat(&[&q.0, &k.0, &v.0], 0)?, Some(Tensor::cat(&[&q.1, &k.1, &v.1], 0)?));
    let term = |name: &str| adapter.and_then(|a| a.term(&format!("{prefix}.{name}")));
    let qkv_lora = match (term("attention.self.query"), term("attention.self.key"), term("attention.self.value")) {
        (Some(q), Some(k), Some(v)) => Some([q, k, v]),
        (None, None, None) => None,
        _ => candle_core::bail!("{prefix}: the adapter must change query, key and value together or none of them"),
    };
    let projection = |base: Linear, name: &str| Projection { base, lora: term(name) };
    Ok(Layer {
        qkv,
        qkv_lora,
        attention_out: projection(linear(h, h, att.pp("output").pp("dense"))?, "attention.output.dense"),
        attention_norm: layer_norm(h, config.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
        intermediate: projection(
            linear(h, config.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            "intermediate.dense",
        ),
        output: projection(linear(config.intermediate_size, h, vb.pp("output").pp("dense"))?, "output.dense"),
        output_norm: layer_norm(h, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
    })
}
