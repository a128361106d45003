-- The record ids each first-party intake channel has pushed or imported (no text: the text goes to
-- posts.raw and is stored redacted in posts). The intake answers `duplicate` for an id found here,
-- also seconds after the first push, before the post has reached `posts`. Normally one row per
-- (channel, id); a second can appear when two processes take one channel at once or a crash comes
-- between Kafka's acknowledgement and this write, and readers then take the earliest `seen_at`
-- (plain MergeTree: no merge may replace the first row by a later one). No partitioning and no
-- retention: a re-pushed old record must stay a duplicate after its post has aged out of `posts`.
-- `category` is the channel's own classification of the record, kept here because posts has no
-- column for it (join on key = channel || ':' || id).
CREATE TABLE IF NOT EXISTS ${db}.intake_seen
(
    channel String,
    id String,
    content_hash UInt64,
    category String,
    seen_at DateTime('UTC')
)
ENGINE = MergeTree()
ORDER BY (channel, id);
