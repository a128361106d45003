-- The alert engine's history. alert_events: one row per event (fired, renotified, resolved) with
-- the event's whole JSON, as the webhook received it; on start the engine reads the open alerts
-- back from here. ReplacingMergeTree on event_id: an event written twice (a crash between the
-- insert and its acknowledgement) is one event. alert_notifications: one row per delivery attempt.
-- alert_held: the last evaluation at which an open alert's condition held, so that after a restart
-- it resolves a window after the condition last held, not a window after its last message.
CREATE TABLE IF NOT EXISTS ${db}.alert_events
(
    event_id String,
    alert_id String,
    event String,
    state String,
    rule String,
    kind String,
    severity String,
    topic String,
    place String,
    observed Float64,
    evaluated_at DateTime('UTC'),
    fired_at DateTime('UTC'),
    body String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(fired_at)
ORDER BY (alert_id, event_id);

CREATE TABLE IF NOT EXISTS ${db}.alert_notifications
(
    event_id String,
    alert_id String,
    notifier String,
    attempt UInt32,
    outcome String,
    http_status Nullable(UInt16),
    error String,
    at DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (event_id, notifier, attempt);

CREATE TABLE IF NOT EXISTS ${db}.alert_held
(
    alert_id String,
    held_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(held_at)
ORDER BY alert_id;
