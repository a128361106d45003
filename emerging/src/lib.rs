//! Emerging issues: what nobody configured. The day's posts that no topic claims with confidence
//! (the analyzer keeps their embeddings in ClickHouse `post_embeddings`) are grouped by meaning,
//! and each dense group that is new or growing against the days before is reported with a label of
//! its most distinctive words, its size, growth, share negative, places and example posts.
//!
//! Modules and what each owns:
//! - [`cluster`]: grouping unit vectors by density (k-means cells, DBSCAN inside, merge across).
//! - [`words`]: a group's most distinctive words (terms without diacritics, shown with them).
//! - [`find`]: one day's reasoning, without I/O: groups, growth against the baseline, descriptions.
//! - [`job`]: [`Job`], reading a day from ClickHouse and keeping reports in `emerging_reports`.
//! - [`report`]: [`Report`] and [`Group`], the JSON of the API and the CLI.
//! - [`proposal`]: a proposed `[[topic]]` block from a reported group, for a person to review.
//! - [`stage`]: [`run`], the `emerging` stage: today's report every hour, yesterday's final one.

pub mod cluster;
pub mod find;
pub mod job;
pub mod proposal;
pub mod report;
pub mod stage;
pub mod words;

pub use job::{EmergingError, Job};
pub use report::{Group, Report, Status};
pub use stage::{run, EmergingDeps, EmergingSettings, EmergingStats};
