//! The fine-tuned encoder: the low-rank adapter of `analyze.adapter` merged into the plain weights
//! by scripts/fetch-model.sh (into `analyze.tuned_model_dir`, whose source.json records the
//! adapter's SHA-256). Here: the identity of that encoder, and the check that the merged folder was
//! built from the configured adapter, so an updated adapter never runs with stale merged weights.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter {0} not found: run scripts/fetch-model.sh in a checkout that has it, or set analyze.adapter = \"none\" (--adapter none) for the plain encoder")]
    Missing(String),
    #[error("{dir} was not built from the adapter {adapter} (merged {merged}, the file is {file}): run scripts/fetch-model.sh")]
    Stale { dir: String, adapter: String, merged: String, file: String },
}

/// The id heads and caches record for the plain encoder.
pub const PLAIN_ENCODER_ID: &str = "multilingual-e5-small";

/// SHA-256 (hex) of the adapter file.
pub fn adapter_sha256(adapter: &Path) -> Result<String, AdapterError> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(adapter).map_err(|_| AdapterError::Missing(adapter.display().to_string()))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// The SHA-256 of the adapter a merged folder was built from (its source.json), if it says.
pub fn merged_adapter(model_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(model_dir.join("source.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.pointer("/adapter/sha256")?.as_str().map(str::to_owned)
}

/// The tuned encoder's id: the plain id and the adapter's hash, so heads trained on one encoder and
/// cached embeddings of one are never used with the other.
pub fn tuned_encoder_id(model_dir: &Path) -> String {
    let sha = merged_adapter(model_dir).unwrap_or_else(|| "unbuilt".into());
    format!("{PLAIN_ENCODER_ID}+lora-{}", &sha[..sha.len().min(12)])
}

/// Refuses a merged folder built from another adapter than the configured one.
pub fn check_merged(model_dir: &Path, adapter: &Path) -> Result<(), AdapterError> {
    let file = adapter_sha256(adapter)?;
    let merged = merged_adapter(model_dir).unwrap_or_else(|| "nothing".into());
    if merged != file {
        return Err(AdapterError::Stale {
            dir: model_dir.display().to_string(),
            adapter: adapter.display().to_string(),
            merged,
            file,
        });
    }
    Ok(())
}
