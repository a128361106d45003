-- The record ids each first-party intake channel has pushed or imported (no text: the text goes to
-- posts.raw and is stored redacted in posts). The intake answers `duplicate` for an id found here,
-- also seconds after the first push, before the post has reached `posts`. One row per (channel,
-- id); a row written twice (a retried request whose first answer was lost) collapses. No
-- partitioning and no retention: a re-pushed old record must stay a duplicate after its post has
-- aged out of `posts`. `category` is the channel's own classification of the record, kept here
-- because posts has no column for it (join on key = channel || ':' || id).
CREATE TABLE IF NOT EXISTS ${db}.intake_seen
(
    channel String,
    id String,
    content_hash UInt64,
    category String,
    seen_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY (channel, id);
