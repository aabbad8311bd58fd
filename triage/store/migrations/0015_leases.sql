-- Leases (correlator/leases.py): which process holds a correlator shard, the alert evaluator or the
-- queue pollers. Append-only: every claim, renewal, release and hand-back request is a row, and the
-- state of a lease is read from its rows (the first claim of the newest term wins; a term lasts while
-- its holder renews). Kept a week; a lease renewed every cycle writes one small row a cycle.
CREATE TABLE IF NOT EXISTS triage_leases ${ON_CLUSTER} (
    Name String,
    Term UInt64,
    Holder String,
    Kind LowCardinality(String),
    Expires DateTime64(3, 'UTC'),
    At DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ${Replicated}MergeTree
ORDER BY (Name, Term, At)
TTL toDateTime(At) + toIntervalDay(7);
