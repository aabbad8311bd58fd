-- What the dashboards read, pre-aggregated (dashboards/queries/, docs/operations.md "Dashboards at scale"),
-- so that a page reads a table whose size does not grow with the number of transactions or spans.
--
-- Spans are append-only: per-minute aggregates kept by materialized views as spans are inserted
-- (AggregatingMergeTree; -State columns merge across minutes and parts), backfilled below from the spans
-- already stored. Their names start with otel_ so the raw retention applies to them (store/retention.py).
--
-- Transaction states are not append-only: business_transactions is a ReplacingMergeTree whose newest
-- Version wins, and an insert-time view sees each version, never the one it replaces, so counts by state
-- cannot be kept incrementally without reading back the previous version on every insert. These are
-- snapshots instead: refreshable materialized views that re-read `business_transactions FINAL` on a timer
-- and replace their table, so every figure is exact as of RefreshedAt, whatever was replaced. Time ranges
-- are the dashboards' own (dashboards/filters.py RANGES: 1h, 6h, 24h, 7d, 30d, in seconds), measured back
-- from RefreshedAt, and time buckets are bucket_seconds() of each range; tests/dashboards/test_aggregates.py
-- checks both against the Python constants and every figure against the raw query. A page reads a snapshot
-- refreshed after the last write when refreshing is cheap (small stores), else the latest one
-- (dashboards/queries/snapshots.py).

CREATE TABLE IF NOT EXISTS otel_traces_service_minutes ${ON_CLUSTER} (
    Minute DateTime,
    ServiceName LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Duration AggregateFunction(quantileTDigest(0.95), UInt64),
    LastError AggregateFunction(argMaxIf, String, DateTime64(9), UInt8)
) ENGINE = ${Replicated}AggregatingMergeTree
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, Minute)
TTL Minute + toIntervalDay(${RAW_TTL_DAYS})
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_service_minutes_mv ${ON_CLUSTER}
TO otel_traces_service_minutes
AS SELECT toStartOfMinute(Timestamp) AS Minute, ServiceName, count() AS Calls,
       countIf(StatusCode = 'Error') AS Errors, quantileTDigestState(0.95)(Duration) AS Duration,
       argMaxIfState(StatusMessage, Timestamp, toUInt8(StatusCode = 'Error')) AS LastError
FROM otel_traces
WHERE SpanKind IN ('Server', 'Client', 'Consumer')
GROUP BY Minute, ServiceName;

-- Outside systems seen only in their callers' client spans (peer.service).
CREATE TABLE IF NOT EXISTS otel_traces_peer_minutes ${ON_CLUSTER} (
    Minute DateTime,
    Peer String,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    LastError AggregateFunction(argMaxIf, String, DateTime64(9), UInt8)
) ENGINE = ${Replicated}AggregatingMergeTree
PARTITION BY toDate(Minute)
ORDER BY (Peer, Minute)
TTL Minute + toIntervalDay(${RAW_TTL_DAYS})
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_peer_minutes_mv ${ON_CLUSTER}
TO otel_traces_peer_minutes
AS SELECT toStartOfMinute(Timestamp) AS Minute, SpanAttributes['peer.service'] AS Peer, count() AS Calls,
       countIf(StatusCode = 'Error') AS Errors,
       argMaxIfState(StatusMessage, Timestamp, toUInt8(StatusCode = 'Error')) AS LastError
FROM otel_traces
WHERE SpanKind = 'Client' AND SpanAttributes['peer.service'] != ''
GROUP BY Minute, Peer;

-- Transactions by everything the overview and workflow pages filter and group on. Started: the shortest
-- dashboard range (seconds) that holds StartedAt, 4294967295 for older ones (counted only while stuck).
-- The -State columns hold what the overview's cause groups show of their stuck transactions (the
-- highest-priority ones' detail and keys, facility names), merged across rows by the page.
CREATE TABLE IF NOT EXISTS transaction_rollup ${ON_CLUSTER} (
    RefreshedAt DateTime64(9),
    Workflow LowCardinality(String),
    Facility String,
    FacilityName String,
    Criticality LowCardinality(String),
    State LowCardinality(String),
    CurrentStep LowCardinality(String),
    NextStep LowCardinality(String),
    CauseKind LowCardinality(String),
    CauseComponent String,
    Started UInt32,
    Transactions UInt64,
    Value Float64,
    Overdue UInt64,
    OldestCause Nullable(DateTime64(9)),
    FacilityNames AggregateFunction(groupUniqArray(10), String),
    TopDetail AggregateFunction(argMax, String, Float64),
    TopKey AggregateFunction(argMax, String, Float64),
    Top AggregateFunction(groupArraySorted(5), Tuple(Float64, String))
) ENGINE = MergeTree
ORDER BY (Workflow, State, Criticality, Facility)
TTL toDateTime(RefreshedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

CREATE MATERIALIZED VIEW IF NOT EXISTS transaction_rollup_mv ${ON_CLUSTER}
REFRESH EVERY 30 SECOND
TO transaction_rollup
AS SELECT now64(9) AS RefreshedAt, Workflow, Facility, any(FacilityName) AS FacilityName, Criticality, State,
       CurrentStep, NextStep, CauseKind, CauseComponent,
       arrayFirst(w -> StartedAt >= RefreshedAt - toIntervalSecond(w), [3600, 21600, 86400, 604800, 2592000, 4294967295])
           AS Started,
       count() AS Transactions, sum(Value) AS Value, countIf(DueAt IS NOT NULL AND DueAt < RefreshedAt) AS Overdue,
       min(CauseSince) AS OldestCause, groupUniqArrayStateIf(10)(Name, stuck) AS FacilityNames,
       argMaxStateIf(CauseDetail, Priority, stuck) AS TopDetail, argMaxStateIf(Key, Priority, stuck) AS TopKey,
       groupArraySortedStateIf(5)((-Priority, Key), stuck) AS Top
FROM (SELECT *, FacilityName AS Name, State IN ('stalled', 'blocked', 'failed') AS stuck FROM business_transactions FINAL)
GROUP BY Workflow, Facility, Criticality, State, CurrentStep, NextStep, CauseKind, CauseComponent, Started;

-- The transactions the overview lists: every stuck one, and those in progress with a breach
-- forecast (at risk from RiskAt until DueAt), whole rows as the read model has them.
CREATE TABLE IF NOT EXISTS transactions_attention ${ON_CLUSTER} (
    RefreshedAt DateTime64(9),
    Workflow LowCardinality(String),
    Key String,
    State LowCardinality(String),
    Facility String,
    FacilityName String,
    Criticality LowCardinality(String),
    CurrentStep LowCardinality(String),
    NextStep LowCardinality(String),
    StartedAt DateTime64(9),
    UpdatedAt DateTime64(9),
    DueAt Nullable(DateTime64(9)),
    Value Float64,
    Priority Float64,
    CauseKind LowCardinality(String),
    CauseComponent String,
    CauseDetail String,
    CauseSince Nullable(DateTime64(9)),
    NextStepEta Nullable(DateTime64(9)),
    RiskAt Nullable(DateTime64(9)),
    ForecastBasis String
) ENGINE = MergeTree
ORDER BY (State, Workflow, Priority)
TTL toDateTime(RefreshedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

CREATE MATERIALIZED VIEW IF NOT EXISTS transactions_attention_mv ${ON_CLUSTER}
REFRESH EVERY 30 SECOND
TO transactions_attention
AS SELECT now64(9) AS RefreshedAt, Workflow, Key, State, Facility, FacilityName, Criticality, CurrentStep, NextStep,
       StartedAt, UpdatedAt, DueAt, Value, Priority, CauseKind, CauseComponent, CauseDetail, CauseSince, NextStepEta,
       RiskAt, ForecastBasis
FROM business_transactions FINAL
WHERE State IN ('stalled', 'blocked', 'failed') OR (State = 'in_progress' AND RiskAt IS NOT NULL);

-- Completed transactions' cycle times (StartedAt → UpdatedAt) and throughput, per range: Window is the
-- range (seconds) the row belongs to; a transaction is in every range that holds its time.
-- Kind: 'cycle' (one row per workflow, facility, criticality: the cycle-time states),
-- 'started' and 'completed' (per time bucket of bucket_seconds(Window)).
CREATE TABLE IF NOT EXISTS transaction_flow ${ON_CLUSTER} (
    RefreshedAt DateTime64(9),
    Workflow LowCardinality(String),
    Facility String,
    Criticality LowCardinality(String),
    Window UInt32,
    Kind LowCardinality(String),
    Bucket DateTime64(9),
    Transactions UInt64,
    Stuck UInt64,
    Seconds AggregateFunction(quantiles(0.5, 0.9, 0.95), Float64),
    Histogram AggregateFunction(histogram(30), Float64)
) ENGINE = MergeTree
ORDER BY (Workflow, Window, Kind, Bucket)
TTL toDateTime(RefreshedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

CREATE MATERIALIZED VIEW IF NOT EXISTS transaction_flow_mv ${ON_CLUSTER}
REFRESH EVERY 120 SECOND
TO transaction_flow
AS SELECT now64(9) AS RefreshedAt, Workflow, Facility, Criticality, w.1 AS Window, kind AS Kind,
       -- toStartOfInterval(t, b seconds), which wants a constant b
       toDateTime64(if(kind = 'cycle', 0, intDiv(toUnixTimestamp(if(kind = 'started', StartedAt, UpdatedAt)), w.2) * w.2), 9)
           AS Bucket,
       count() AS Transactions, countIf(State IN ('stalled', 'blocked', 'failed')) AS Stuck,
       quantilesStateIf(0.5, 0.9, 0.95)(seconds, kind = 'cycle') AS Seconds,
       histogramStateIf(30)(seconds, kind = 'cycle') AS Histogram
FROM (
    SELECT Workflow, Facility, Criticality, State, StartedAt, UpdatedAt,
           dateDiff('nanosecond', StartedAt, UpdatedAt) / 1e9 AS seconds
    FROM business_transactions FINAL
    WHERE StartedAt >= now64(9) - toIntervalSecond(2592000)
       OR (State = 'completed' AND UpdatedAt >= now64(9) - toIntervalSecond(2592000))
)
ARRAY JOIN [(3600, 60), (21600, 600), (86400, 1800), (604800, 10800), (2592000, 43200)] AS w
ARRAY JOIN arrayFilter(k -> (k = 'started' AND StartedAt >= now64(9) - toIntervalSecond(w.1))
                            OR (k != 'started' AND State = 'completed' AND UpdatedAt >= now64(9) - toIntervalSecond(w.1)),
                       ['started', 'completed', 'cycle']) AS kind
GROUP BY Workflow, Facility, Criticality, Window, Kind, Bucket;

-- Step-to-step transitions of each workflow per range, as dashboards/queries/workflow.py TRANSITIONS
-- computes them over one range: a pair of consecutive reached steps is in every range that holds its
-- first step's time (its second is later). Durations are quantile states (exact up to 8192 pairs per
-- step pair and range, sampled above), so the shards' snapshots merge. Refreshed less often: the flow of
-- a workflow moves slowly.
CREATE TABLE IF NOT EXISTS workflow_transitions ${ON_CLUSTER} (
    RefreshedAt DateTime64(9),
    Workflow LowCardinality(String),
    Window UInt32,
    FromStep LowCardinality(String),
    ToStep LowCardinality(String),
    Transitions UInt64,
    Seconds AggregateFunction(quantiles(0.5, 0.95), Float64)
) ENGINE = MergeTree
ORDER BY (Workflow, Window)
TTL toDateTime(RefreshedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

CREATE MATERIALIZED VIEW IF NOT EXISTS workflow_transitions_mv ${ON_CLUSTER}
REFRESH EVERY 300 SECOND
TO workflow_transitions
AS SELECT now64(9) AS RefreshedAt, Workflow, w AS Window, p.1 AS FromStep, p.2 AS ToStep, count() AS Transitions,
       quantilesState(0.5, 0.95)(p.3) AS Seconds
FROM (
    SELECT Workflow, arraySort(x -> x.2, groupArray((Step, t))) AS seq
    FROM (
        SELECT Workflow, Key, Step, min(At) AS t
        FROM business_events
        WHERE Step != '' AND Status = 'ok' AND Failure = 0 AND At >= now64(9) - toIntervalSecond(2592000)
        GROUP BY Workflow, Key, Step
    )
    GROUP BY Workflow, Key
)
ARRAY JOIN arrayMap((a, b) -> (a.1, b.1, toFloat64(dateDiff('millisecond', a.2, b.2)) / 1000, a.2),
                    arrayPopBack(seq), arrayPopFront(seq)) AS p
ARRAY JOIN arrayFilter(x -> p.4 >= now64(9) - toIntervalSecond(x), [3600, 21600, 86400, 604800, 2592000]) AS w
GROUP BY Workflow, Window, FromStep, ToStep;

-- Backfill: the spans stored before the views existed (`triage migrate` runs before anything is accepted),
-- last and only into an empty table, so that a migration retried after a failure does not count them twice.
INSERT INTO otel_traces_service_minutes
SELECT toStartOfMinute(Timestamp) AS Minute, ServiceName, count(), countIf(StatusCode = 'Error'),
       quantileTDigestState(0.95)(Duration), argMaxIfState(StatusMessage, Timestamp, toUInt8(StatusCode = 'Error'))
FROM otel_traces
WHERE SpanKind IN ('Server', 'Client', 'Consumer') AND (SELECT count() FROM otel_traces_service_minutes) = 0
GROUP BY Minute, ServiceName;

INSERT INTO otel_traces_peer_minutes
SELECT toStartOfMinute(Timestamp) AS Minute, SpanAttributes['peer.service'] AS Peer, count(),
       countIf(StatusCode = 'Error'), argMaxIfState(StatusMessage, Timestamp, toUInt8(StatusCode = 'Error'))
FROM otel_traces
WHERE SpanKind = 'Client' AND SpanAttributes['peer.service'] != '' AND (SELECT count() FROM otel_traces_peer_minutes) = 0
GROUP BY Minute, Peer
