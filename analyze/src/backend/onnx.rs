//! The ONNX Runtime backend (cargo feature `onnx`): libonnxruntime is loaded at run time from the
//! onnxruntime wheel (scripts/fetch-model.sh), so the build needs no C++ toolchain or download.
//! model.onnx takes int64 `input_ids` and `attention_mask` and returns the last hidden state.

use super::{Backend, BackendError, PaddedBatch};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::Tensor;
use std::path::Path;
use std::sync::OnceLock;

pub struct OnnxBackend {
    session: Session,
    name: String,
}

/// ONNX Runtime may be initialised once per process.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(dylib: &Path) -> Result<&'static ort::environment::Environment, BackendError> {
    let env = ENVIRONMENT.get_or_init(|| {
        ort::init_from(dylib).map_err(|e| e.to_string())?.with_name("citypulse").build().map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|message| BackendError::Load {
        path: dylib.display().to_string(),
        message: format!("{message} (run scripts/fetch-model.sh or set ORT_DYLIB_PATH)"),
    })
}

impl OnnxBackend {
    /// Loads `model_file` (model.onnx or model.int8.onnx) with `threads` intra-op threads.
    pub fn load(dylib: &Path, model_file: &Path, threads: usize) -> Result<Self, BackendError> {
        let env = environment(dylib)?;
        let err = |message: String| BackendError::Load { path: model_file.display().to_string(), message };
        let session = Session::builder(env)
            .map_err(|e| err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| err(e.to_string()))?
            .commit_from_file(model_file)
            .map_err(|e| err(e.to_string()))?;
        let precision = if model_file.to_string_lossy().contains("int8") { "int8" } else { "fp32" };
        Ok(Self { session, name: format!("onnx-{precision}") })
    }
}

impl Backend for OnnxBackend {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn hidden_states(&mut self, batch: &PaddedBatch) -> Result<Vec<f32>, BackendError> {
        let fwd = |e: ort::Error| BackendError::Forward(e.to_string());
        let shape = [batch.rows, batch.seq_len];
        let ids = Tensor::from_array((shape, batch.ids.clone())).map_err(fwd)?;
        let mask = Tensor::from_array((shape, batch.mask.clone())).map_err(fwd)?;
        let outputs = self.session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask]).map_err(fwd)?;
        let (_, hidden) = outputs[0].try_extract_tensor::<f32>().map_err(fwd)?;
        Ok(hidden.to_vec())
    }
}
