-- Posts whose source gave no readable date carry their fetch time (schema 1.1 created_at_estimated).
-- They stay in posts, where a search finds them, but out of the trend cubes: a feed's backlog of
-- undated items would otherwise show as a spike at the hour it was crawled, and alerts read trends.
-- 18.16 has neither ADD COLUMN IF NOT EXISTS nor ALTER ... MODIFY QUERY: migrate.rs skips an ADD
-- COLUMN whose column exists, and the views are dropped and created again with the filter. Posts
-- inserted between the DROP and the CREATE (by another store replica) would miss the cubes, so
-- upgrade with the store stopped, as for every migration.
ALTER TABLE ${db}.posts ADD COLUMN created_at_estimated UInt8 DEFAULT 0;

DROP TABLE IF EXISTS ${db}.trends_hourly_mv;

DROP TABLE IF EXISTS ${db}.trends_daily_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.trends_hourly_mv TO ${db}.trends_hourly AS
SELECT
    toStartOfHour(created_at, '${tz}') AS bucket,
    arrayJoin(arrayConcat(['*'], topics)) AS topic,
    arrayJoin(arrayConcat(['*'], places)) AS place,
    source,
    sentiment,
    model_version,
    sum(toInt64(sign)) AS posts,
    sum(toFloat64(score) * sign) AS score_sum
FROM ${db}.posts
WHERE created_at_estimated = 0
GROUP BY bucket, topic, place, source, sentiment, model_version;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.trends_daily_mv TO ${db}.trends_daily AS
SELECT
    toDate(created_at, '${tz}') AS day,
    arrayJoin(arrayConcat(['*'], topics)) AS topic,
    arrayJoin(arrayConcat(['*'], places)) AS place,
    source,
    sentiment,
    model_version,
    sum(toInt64(sign)) AS posts,
    sum(toFloat64(score) * sign) AS score_sum
FROM ${db}.posts
WHERE created_at_estimated = 0
GROUP BY day, topic, place, source, sentiment, model_version;
