//! Ingest: crawls public posts from the configured sources and produces them to Kafka `posts.raw`.
//!
//! Not built yet (issue #6): sources (Mastodon, Reddit, RSS/Atom, Bluesky Jetstream, replay),
//! per-host quotas, checkpointed cursors, the place filter and the Kafka producer land here.
