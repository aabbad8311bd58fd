-- The audit log (triage/audit.py): who created or expired a silence, created or deleted an alert rule,
-- or ran a replay, and when. Kept for the business retention; never updated, only appended.
CREATE TABLE IF NOT EXISTS triage_audit ${ON_CLUSTER} (
    At DateTime64(3, 'UTC') DEFAULT now64(3),
    Actor String,
    Action LowCardinality(String),
    Target String,
    Detail String
) ENGINE = ${Replicated}MergeTree
PARTITION BY toYYYYMM(At)
ORDER BY (At, Action)
TTL toDateTime(At) + toIntervalDay(${BUSINESS_TTL_DAYS});
