//! The workspace's shared test helpers (the `testkit` crate).

pub use testkit::*;

pub mod child;
pub mod serve;

/// Copies the shipped `config/*.toml` into `dir` (created), for a test to edit.
pub fn copy_config_into(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("config dir");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for entry in std::fs::read_dir(shipped).expect("config/") {
        let path = entry.expect("config entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.join(path.file_name().expect("file name"))).expect("copy config");
        }
    }
}
