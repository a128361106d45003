//! A disk cache of embeddings for training and evaluation runs: the same texts are embedded again
//! and again while heads are tuned. Keyed by the encoder id and SHA-256 of the prepared text; an
//! append-only file of (16-byte key, 384 little-endian f32) records.

use crate::backend::HIDDEN;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const RECORD: usize = 16 + HIDDEN * 4;

pub struct EmbeddingCache {
    path: PathBuf,
    entries: HashMap<[u8; 16], Vec<f32>>,
}

impl EmbeddingCache {
    /// Opens (or starts) the cache at `dir/<encoder>.bin`. A torn last record is ignored.
    pub fn open(dir: &Path, encoder: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{encoder}.bin"));
        let bytes = std::fs::read(&path).unwrap_or_default();
        let entries = bytes
            .chunks_exact(RECORD)
            .map(|rec| {
                let key: [u8; 16] = rec[..16].try_into().unwrap_or([0; 16]);
                let emb = rec[16..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                (key, emb)
            })
            .collect();
        Ok(Self { path, entries })
    }

    pub fn key(text: &str) -> [u8; 16] {
        let digest = Sha256::digest(text.as_bytes());
        digest[..16].try_into().unwrap_or([0; 16])
    }

    pub fn get(&self, text: &str) -> Option<&Vec<f32>> {
        self.entries.get(&Self::key(text))
    }

    /// Adds embeddings and appends them to the file.
    pub fn extend(&mut self, items: impl IntoIterator<Item = (String, Vec<f32>)>) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        let mut buf = Vec::new();
        for (text, emb) in items {
            let key = Self::key(&text);
            buf.extend_from_slice(&key);
            emb.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
            self.entries.insert(key, emb);
        }
        file.write_all(&buf)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
