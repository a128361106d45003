// The rpath to libtorch for the `torch` feature, as in the analyze crate.
include!("analyze/build.rs");
