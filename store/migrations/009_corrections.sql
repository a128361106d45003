-- Analysts' corrections of the classifier (issue #26): one live correction per post and field
-- (`id` is a hash of the two); a later correction of the same post and field, or its revocation,
-- is a row of a higher version. The redacted text is kept with it, so a correction still trains
-- a head after retention has dropped its post.

CREATE TABLE IF NOT EXISTS ${db}.corrections
(
    id String,
    post_key String,
    field String,
    old_label String,
    new_label String,
    model_id String,
    model_version String,
    text_redacted String,
    corrected_by String,
    corrected_at DateTime('UTC'),
    revoked UInt8,
    revoked_by String,
    revoked_at DateTime('UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
