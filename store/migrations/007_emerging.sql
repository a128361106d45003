-- Emerging issues. post_embeddings: the encoder's embedding, one signed byte per dimension, of each
-- post no topic claimed when it was analysed (the analyzer decides; see [emerging] in
-- citypulse.toml). Partitioned by UTC day of publication like posts, and dropped with them.
-- ReplacingMergeTree on key: a redelivered post is one row after merges, and readers take the row
-- of the post's current model_version. No text here: the job joins posts for the redacted text.
CREATE TABLE IF NOT EXISTS ${db}.post_embeddings
(
    key String,
    created_at DateTime('UTC'),
    model_version String,
    embedding Array(Int8),
    analyzed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(analyzed_at)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY key;

-- The emerging-issues job's reports: each run of a city day inserts a row (the whole report as
-- JSON, the API's answer, with its counts beside it for a quick look); merges keep only the day's
-- latest (ReplacingMergeTree on computed_at), and readers take the latest computed_at in any case.
-- `final` is 1 for a run made two hours or more after the day ended. Retention drops it with posts.
CREATE TABLE IF NOT EXISTS ${db}.emerging_reports
(
    day Date,
    computed_at DateTime('UTC'),
    final UInt8,
    posts UInt32,
    groups UInt16,
    reported UInt16,
    duration_ms UInt32,
    body String
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(day)
ORDER BY day;
