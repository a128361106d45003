//! A low-rank adapter applied unmerged in the candle encoder: y = W·x + b + (alpha/r)·B·A·x.
//!
//! The shipped tuned model has the adapter merged into its weights (scripts/fetch-model.sh), so no
//! backend pays for it at run time. This unmerged path exists to check that merge independently:
//! candle on the plain weights with the adapter file applied here must give the tuned ONNX model's
//! embeddings (analyze/tests/adapter.rs).

use candle_core::{Device, Module, Tensor};
use candle_nn::Linear;
use std::collections::HashMap;
use std::path::Path;

/// The adapter's A and B per adapted Linear (HF names, e.g. `encoder.layer.0.attention.self.query`).
pub struct LoraWeights {
    pairs: HashMap<String, (Tensor, Tensor)>,
    scale: f64,
}

impl LoraWeights {
    /// Reads scripts/train_adapter.py's file: F32 `<linear>.lora_A` [r, in], `<linear>.lora_B`
    /// [out, r]; metadata `rank` and `alpha`.
    pub fn load(path: &Path) -> candle_core::Result<Self> {
        let bytes = std::fs::read(path)?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", path.display())))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let number = |key: &str| -> candle_core::Result<f64> {
            meta.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| candle_core::Error::Msg(format!("{}: metadata lacks {key}", path.display())))
        };
        let scale = number("alpha")? / number("rank")?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let mut pairs = HashMap::new();
        for (name, a) in &tensors {
            if let Some(base) = name.strip_suffix(".lora_A") {
                let b = tensors
                    .get(&format!("{base}.lora_B"))
                    .ok_or_else(|| candle_core::Error::Msg(format!("{base} has lora_A but no lora_B")))?;
                // Stored transposed for x·Aᵀ·Bᵀ.
                pairs.insert(base.to_owned(), (a.t()?.contiguous()?, b.t()?.contiguous()?));
            }
        }
        Ok(Self { pairs, scale })
    }

    /// The low-rank term for the Linear `name`, if the adapter has one.
    pub fn term(&self, name: &str) -> Option<LoraTerm> {
        self.pairs.get(name).map(|(a_t, b_t)| LoraTerm { a_t: a_t.clone(), b_t: b_t.clone(), scale: self.scale })
    }
}

/// One Linear's low-rank term, Aᵀ [in, r] and Bᵀ [r, out].
#[derive(Clone)]
pub struct LoraTerm {
    a_t: Tensor,
    b_t: Tensor,
    scale: f64,
}

impl LoraTerm {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&self.a_t)?.broadcast_matmul(&self.b_t)? * self.scale
    }
}

/// A Linear with an optional low-rank term beside it.
pub struct Projection {
    pub base: Linear,
    pub lora: Option<LoraTerm>,
}

impl Module for Projection {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.base.forward(x)?;
        match &self.lora {
            Some(l) => y + l.forward(x)?,
            None => Ok(y),
        }
    }
}
