//! The workspace's shared test helpers (the `testkit` crate).

pub use testkit::*;

pub mod serve;
