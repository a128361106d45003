//! Text preparation for the analyzer, in pipeline order:
//! - `normalize`: canonical form (NFC, invisible characters removed, whitespace collapsed);
//! - `lang`: vi / en / other, including Vietnamese typed without diacritics;
//! - `redact`: phone numbers, e-mail addresses, ID and card numbers replaced by placeholders;
//! - `prepare_for_model` (in `normalize`): the encoder's input, links/handles/hashtags tamed.

mod lang;
mod normalize;
mod redact;

pub use lang::{detect_language, Lang};
pub use normalize::{normalize, prepare_for_model};
pub use redact::{redact, Redacted};

#[cfg(test)]
mod lang_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod redact_tests;
