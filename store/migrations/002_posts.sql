-- One row per analysed post (redacted text only). VersionedCollapsingMergeTree: the writer replaces a
-- re-analysed post by a cancelling row (sign = -1, the stored row's version and labels) plus the new
-- row (sign = +1, next version), so pairs collapse on merge and the materialized views below only
-- ever add signed numbers. Partitioned by UTC day of publication: retention drops whole days, and the
-- writer's lookup of stored keys reads only the days of its batch. content_hash (of everything but
-- fetch/analysis times) lets that lookup tell a redelivery from a re-analysis without reading text.
-- Small granules: the lookup is a point query per key.
CREATE TABLE IF NOT EXISTS ${db}.posts
(
    key String,
    source String,
    id String,
    url String,
    author String,
    lang String,
    lang_declared String,
    text_redacted String,
    sentiment String,
    score Float32,
    p_negative Float32,
    p_neutral Float32,
    p_positive Float32,
    topics Array(String),
    topic_scores Array(Float32),
    primary_topic String,
    places Array(String),
    likes Nullable(UInt64),
    shares Nullable(UInt64),
    replies Nullable(UInt64),
    created_at DateTime('UTC'),
    created_ms UInt16,
    fetched_at DateTime('UTC'),
    analyzed_at DateTime('UTC'),
    analyzed_ms UInt16,
    model_id String,
    model_version String,
    content_hash UInt64,
    sign Int8,
    version UInt64
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY key
SETTINGS index_granularity = 2048;
