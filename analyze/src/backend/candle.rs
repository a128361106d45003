//! The pure-Rust backend: a BERT forward pass in candle ([`super::bert`]) over model.safetensors
//! (fp32, CPU).

use super::bert::{BertConfig, BertEncoder};
use super::lora::LoraWeights;
use super::{Backend, BackendError, PaddedBatch};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;

pub struct CandleBackend {
    model: BertEncoder,
    device: Device,
}

impl CandleBackend {
    /// Loads `config.json` and `model.safetensors` from an HF model folder.
    ///
    /// candle sizes its thread pools once per process from `RAYON_NUM_THREADS` (default: the
    /// physical cores), not per model; the binary sets that variable from `--threads` at start.
    /// When `threads` disagrees with candle's count (e.g. `analyze.threads` from the config), this
    /// says so instead of pretending.
    pub fn load(model_dir: &Path, threads: usize) -> Result<Self, BackendError> {
        Self::load_adapted(model_dir, None, threads)
    }

    /// The model in `model_dir` with the adapter file applied unmerged ([`super::lora`]): the
    /// independent check of the merged tuned model.
    pub fn load_adapted(model_dir: &Path, adapter: Option<&Path>, threads: usize) -> Result<Self, BackendError> {
        let err = |path: &Path, message: String| BackendError::Load { path: path.display().to_string(), message };
        let config_path = model_dir.join("config.json");
        let weights = model_dir.join("model.safetensors");
        let text = std::fs::read_to_string(&config_path).map_err(|e| err(&config_path, e.to_string()))?;
        let config: BertConfig = serde_json::from_str(&text).map_err(|e| err(&config_path, e.to_string()))?;
        let device = Device::Cpu;
        // SAFETY: the weights file is memory-mapped read-only; nothing in this process writes it,
        // and scripts/fetch-model.sh replaces it only by rename.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .map_err(|e| err(&weights, e.to_string()))?;
        let lora = match adapter {
            Some(path) => Some(LoraWeights::load(path).map_err(|e| err(path, e.to_string()))?),
            None => None,
        };
        let model = BertEncoder::load_adapted(vb, &config, lora.as_ref()).map_err(|e| err(&weights, e.to_string()))?;
        let pool = candle_core::utils::get_num_threads();
        if pool != threads {
            tracing::warn!(
                requested = threads,
                running = pool,
                "candle runs on {pool} threads; set RAYON_NUM_THREADS={threads} (or pass --threads) to change it"
            );
        }
        Ok(Self { model, device })
    }
}

impl Backend for CandleBackend {
    fn name(&self) -> String {
        "candle".into()
    }

    fn hidden_states(&mut self, batch: &PaddedBatch) -> Result<Vec<f32>, BackendError> {
        let fwd = |e: candle_core::Error| BackendError::Forward(e.to_string());
        let shape = (batch.rows, batch.seq_len);
        let ids = Tensor::from_slice(&batch.ids, shape, &self.device).map_err(fwd)?;
        let mask = Tensor::from_slice(&batch.mask, shape, &self.device).map_err(fwd)?;
        let hidden = self.model.forward(&ids, &mask).map_err(fwd)?;
        hidden.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(fwd)
    }
}
