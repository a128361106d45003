-- Saved searches. posts gets each text's words in the form ClickHouse can match (schema::terms::
-- SearchIndex, written by the store): search_folded holds the words without diacritics, search_words
-- the words as written, only for texts that have diacritics (for the others it would equal
-- search_folded), each word between spaces and `|` at clause breaks. A search is then a few
-- substring scans of these columns (schema::search_query::Query::to_sql), which answer on 10M
-- posts in under a second where reading the texts into Rust would take minutes. search_index is
-- the encoding's version; 0 marks rows stored before this migration, which `citypulse searches
-- reindex` rewrites. Not in content_hash: they are derived from text_redacted.
ALTER TABLE ${db}.posts ADD COLUMN search_words String DEFAULT '';

ALTER TABLE ${db}.posts ADD COLUMN search_folded String DEFAULT '';

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
