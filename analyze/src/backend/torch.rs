//! The libtorch backend (cargo feature `torch`): rust-bert's own BERT model code ([`BertModel`])
//! over tch 0.17 / libtorch 2.4.0, for a site that already runs libtorch.
//!
//! rust-bert's model code fits our converted folder as it is: multilingual-e5-small is a
//! `BertModel` (absolute positions from 0, one token type, exact-erf GELU, LayerNorm eps 1e-12), and
//! model.safetensors names its tensors as rust-bert's variables are named from the root. Where it
//! does not fit, this file does the work: the folder has no pooler (e5 pools by mean, shared code in
//! [`super::mean_pool_normalise`]), so the model is built without one; and rust-bert's loaders
//! expect its `.ot` files from a hub, so [`load_weights`] copies model.safetensors into the model's
//! variables itself (tch's own safetensors loaders read the whole file into memory first, then a
//! tensor of each weight: 1.78 GB at peak for one worker against 1.34 GB here).
//! Tokenisation stays ours ([`crate::tokenize`]) so every backend sees the same ids.

use super::{Backend, BackendError, PaddedBatch, HIDDEN};
use rust_bert::bert::{BertConfig, BertEmbeddings, BertModel};
use std::path::Path;
use tch::{nn::VarStore, Device, Kind, Tensor};

pub struct TorchBackend {
    model: BertModel<BertEmbeddings>,
    // Holds the weights the model's variables point into.
    _vars: VarStore,
}

impl TorchBackend {
    /// Loads `config.json` and `model.safetensors` from an HF model folder.
    ///
    /// libtorch's intra-op thread count is process-wide: `threads` sets it for the process, so
    /// several workers (`analyze.workers`) each run on the count the last one loaded set, which the
    /// classifier makes `threads / workers`.
    pub fn load(model_dir: &Path, threads: usize) -> Result<Self, BackendError> {
        let err = |path: &Path, message: String| BackendError::Load { path: path.display().to_string(), message };
        let config_path = model_dir.join("config.json");
        let weights = model_dir.join("model.safetensors");
        let text = std::fs::read_to_string(&config_path).map_err(|e| err(&config_path, e.to_string()))?;
        let config: BertConfig = serde_json::from_str(&text).map_err(|e| err(&config_path, e.to_string()))?;
        if config.hidden_size != HIDDEN as i64 {
            return Err(err(&config_path, format!("hidden_size {} (expected {HIDDEN})", config.hidden_size)));
        }
        set_up_process();
        tch::set_num_threads(threads.max(1) as i32);
        let mut vars = VarStore::new(Device::Cpu);
        let model = BertModel::<BertEmbeddings>::new_with_optional_pooler(vars.root(), &config, false);
        load_weights(&vars, &weights).map_err(|e| err(&weights, e))?;
        vars.freeze();
        Ok(Self { model, _vars: vars })
    }
}

/// Copies every variable the model declares from the mapped file, one tensor at a time and without
/// an intermediate copy where the data is aligned for f32 (safetensors writers align it: the
/// 384 MB embedding table would otherwise be held twice). Fails, naming it, for a variable the file
/// lacks or holds in another type or shape.
fn load_weights(vars: &VarStore, path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // SAFETY: mapped read-only and dropped when this returns; nothing in this process writes the
    // file, and scripts/fetch-model.sh replaces it only by rename.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let tensors = safetensors::SafeTensors::deserialize(&map).map_err(|e| e.to_string())?;
    for (name, mut var) in vars.variables() {
        let view = tensors.tensor(&name).map_err(|e| format!("{name}: {e}"))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if view.dtype() != safetensors::Dtype::F32 || shape != var.size() {
            return Err(format!("{name}: {:?} {shape:?} in the file, f32 {:?} in the model", view.dtype(), var.size()));
        }
        let data = view.data();
        let source = if data.as_ptr().align_offset(4) == 0 {
            let len = (data.len() / 4) as i64;
            // SAFETY: `data` holds the tensor's f32 values, aligned, row-major (checked above), and
            // outlives this borrowed tensor, which is only read by the copy below.
            unsafe { Tensor::from_blob(data.as_ptr(), &[len], &[1], Kind::Float, Device::Cpu) }.view(shape.as_slice())
        } else {
            Tensor::from_data_size(data, &shape, Kind::Float)
        };
        tch::no_grad(|| var.f_copy_(&source)).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Once per process: inter-op parallelism off (a BERT forward pass is one chain of ops, and libtorch
/// refuses to set it a second time), and glibc's malloc told to keep freed memory.
///
/// libtorch's CPU allocator takes every tensor from glibc's malloc. Under glibc's defaults each
/// batch's activations (megabytes) went back to the system when freed and were faulted in again for
/// the next batch: 806,000 page faults for 300 posts of uit-vsfc dev. Keeping up to 1 GB of freed
/// memory and mapping only chunks over 128 MB on their own left 247,000 (loading the model) and
/// took the rate from 108 to 123 posts/s on 2 threads. Process-wide, so once, and not over a
/// choice made with glibc's own variables. (Our Rust code allocates through mimalloc.)
fn set_up_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tch::set_num_interop_threads(1);
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
        {
            return;
        }
        // SAFETY: mallopt only changes glibc's thresholds; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    });
}

impl Backend for TorchBackend {
    fn name(&self) -> String {
        "torch".into()
    }

    fn hidden_states(&mut self, batch: &PaddedBatch) -> Result<Vec<f32>, BackendError> {
        let fwd = |e: String| BackendError::Forward(e);
        let shape = [batch.rows as i64, batch.seq_len as i64];
        let ids = Tensor::from_slice(&batch.ids).view(shape);
        let mask = Tensor::from_slice(&batch.mask).view(shape);
        let out = tch::no_grad(|| self.model.forward_t(Some(&ids), Some(&mask), None, None, None, None, None, false))
            .map_err(|e| fwd(e.to_string()))?;
        let flat = out.hidden_state.contiguous().view([-1]);
        Vec::<f32>::try_from(&flat).map_err(|e| fwd(e.to_string()))
    }
}
