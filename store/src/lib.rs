//! Store: ClickHouse migrations, the batched writer from `posts.analyzed`, trend queries, retention.
//!
//! Not built yet (issue #5).
