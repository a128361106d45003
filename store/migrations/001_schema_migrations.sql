-- The ledger of applied migrations. Created by the runner before anything else; kept here so the
-- numbering shows the whole schema history.
CREATE TABLE IF NOT EXISTS ${db}.schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime('UTC')
)
ENGINE = MergeTree
ORDER BY version;
