//! Durable cursors: one small JSON file per stream in the state directory.
//!
//! A cursor is saved only after Kafka acknowledged every post of the page it covers, so after a
//! crash the crawler re-fetches at most that page and never skips one. Writes are atomic (temp
//! file, fsync, rename, fsync of the directory): a crash mid-write leaves the old cursor, never a
//! torn file.

use schema::SourceId;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A file that does not parse is not silently replaced: starting over would skip or repeat a
    /// stream's history, and an operator should decide.
    #[error("checkpoint {path} is corrupt ({message}); move it away to start the stream afresh")]
    Corrupt { path: PathBuf, message: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    source: String,
    stream: String,
    cursor: String,
    saved_at: chrono::DateTime<chrono::Utc>,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.to_owned(), source })?;
        Ok(Checkpoints { dir: dir.to_owned() })
    }

    /// The saved cursor of a stream; `None` when it never saved one.
    pub fn load(&self, source: &SourceId, stream: &str) -> Result<Option<String>, CheckpointError> {
        let path = self.path(source, stream);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        let file: File =
            serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt { path, message: e.to_string() })?;
        Ok(Some(file.cursor))
    }

    /// Saves a stream's cursor atomically and durably.
    pub fn save(&self, source: &SourceId, stream: &str, cursor: &str) -> Result<(), CheckpointError> {
        let path = self.path(source, stream);
        let file = File {
            source: source.to_string(),
            stream: stream.to_owned(),
            cursor: cursor.to_owned(),
            saved_at: chrono::Utc::now(),
        };
        let tmp = path.with_extension("json.tmp");
        let io = |source| CheckpointError::Io { path: path.clone(), source };
        let body = serde_json::to_vec_pretty(&file).unwrap_or_default();
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io)?;
        // The rename is durable only once the directory entry is on disk.
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    /// `<source>__<stream>.json`, the stream name escaped to a safe file name (hashtags may be
    /// Vietnamese: `sàigòn` becomes `s-c3-a0ig-c3-b2n`).
    pub fn path(&self, source: &SourceId, stream: &str) -> PathBuf {
        let mut name = format!("{source}__");
        for b in stream.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' {
                name.push(b as char);
            } else {
                name.push_str(&format!("-{b:02x}"));
            }
        }
        self.dir.join(format!("{name}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::open(&dir.path().join("nested/state")).unwrap();
        let s = SourceId::new("mastodon_social").unwrap();
        assert_eq!(c.load(&s, "tag:sàigòn").unwrap(), None);
        c.save(&s, "tag:sàigòn", "100").unwrap();
        c.save(&s, "tag:sàigòn", "200").unwrap();
        c.save(&s, "public", "7").unwrap();
        assert_eq!(c.load(&s, "tag:sàigòn").unwrap().as_deref(), Some("200"));
        assert_eq!(c.load(&s, "public").unwrap().as_deref(), Some("7"));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("nested/state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temp files left: {names:?}");
        assert!(names.iter().all(|n| n.is_ascii()));
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::open(dir.path()).unwrap();
        let s = SourceId::new("reddit").unwrap();
        std::fs::write(c.path(&s, "saigon"), b"{\"cursor\": 12").unwrap();
        assert!(matches!(c.load(&s, "saigon"), Err(CheckpointError::Corrupt { .. })));
    }
}
