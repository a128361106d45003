// With the `torch` feature, the binaries and tests find libtorch's libraries through their rpath
// (LIBTORCH is the folder scripts/fetch-libtorch.sh makes), so they run without LD_LIBRARY_PATH.
// The workspace root's build.rs includes this file: link arguments apply only to the package whose
// build script prints them.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    if let Some(dir) = std::env::var_os("LIBTORCH") {
        let lib = std::path::Path::new(&dir).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
