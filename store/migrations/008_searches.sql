-- Saved searches. posts gets each text's words in the form ClickHouse can match (schema::terms::
-- SearchIndex, written by the store): search_words holds the words as written, search_folded
-- without diacritics, each word between spaces and `|` at clause breaks; search_accented says
-- whether the text has diacritics at all. A search is then a substring scan of one or two of these
-- columns (schema::search_query::Query::to_sql), where reading the texts into Rust would take
-- minutes. search_index is the encoding's version; 0 marks rows stored before this migration,
-- which `citypulse searches reindex` rewrites. Not in content_hash: derived from text_redacted.
ALTER TABLE ${db}.posts ADD COLUMN search_words String DEFAULT '';

ALTER TABLE ${db}.posts ADD COLUMN search_folded String DEFAULT '';

ALTER TABLE ${db}.posts ADD COLUMN search_accented UInt8 DEFAULT 0;

ALTER TABLE ${db}.posts ADD COLUMN search_index UInt8 DEFAULT 0;

-- Searches saved through the API (analyst role); searches.toml's are configuration. Each save or
-- deletion inserts a row; readers take each name's highest version (milliseconds of the save) and
-- drop deleted names; merges keep only that row.
CREATE TABLE IF NOT EXISTS ${db}.saved_searches
(
    name String,
    query String,
    places Array(String),
    sources Array(String),
    description String,
    saved_by String,
    saved_at DateTime('UTC'),
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY name;

-- A saved search's series, cached per local hour, so that a search over months does not scan
-- months of posts on every request. Each computed local day is tagged with a checksum of that
-- day's posts (sum of sign x hash(content_hash, version): merges do not change it, every insert
-- that changes what is live does); a day whose checksum moved since is computed again. Readers take
-- each day's latest computation (computed_ms, unique per computation) and trust it only if it has
-- its day row (bucket 0), written after its hours: an INSERT cut short leaves the day uncached.
-- Merges keep the latest row per hour; an hour an older computation had and the latest has not is
-- ignored by readers and dropped with the month (partitioned like the cubes, dropped with posts).
CREATE TABLE IF NOT EXISTS ${db}.search_cache
(
    fingerprint UInt64,
    day Date,
    checksum Int64,
    computed_ms UInt64,
    bucket DateTime('UTC'),
    posts Int64,
    score_sum Float64,
    positive Int64,
    neutral Int64,
    negative Int64
)
ENGINE = ReplacingMergeTree(computed_ms)
PARTITION BY toYYYYMM(day)
ORDER BY (fingerprint, day, bucket);
