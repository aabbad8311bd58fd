-- The executive report's figures (dashboards/queries/report.py, docs/operations.md "Dashboards at scale"),
-- pre-aggregated like the pages' snapshots of 0017: a refreshable view re-reads `business_transactions FINAL`
-- and the causes on a timer and replaces its table, so every figure is exact as of RefreshedAt.
--
-- A report period ends at the snapshot's RefreshedAt and reaches back a whole number of hours, so each
-- transaction is filed under Age, the hours (rounded up) from its start to RefreshedAt: it started in the
-- period [RefreshedAt - P hours, RefreshedAt) exactly when 1 <= Age <= P, and in the period before it
-- when P < Age <= 2P. Part says which breakdown a row belongs to:
-- * 'workflow', 'facility', 'day' (the day it started; these rows also hold the period's ten
--   highest-priority stuck transactions, Worst, as a mergeable top-10);
-- * 'cause': per workflow, the transactions a (kind, component) cause was ever recorded for;
-- * 'cycle': completed transactions' cycle times per workflow and tier, Age being the period in seconds
--   (the report's PERIODS: 24h, 7d, 14d, 30d, 90d), with how many finished within Target, the end-to-end
--   SLA that `triage serve` recorded in workflow_targets from its configuration (the report reads the raw
--   table when its own configuration's targets differ).
-- A transaction "stalled" when it is stuck now or a cause was ever recorded for it, as the raw queries say.
-- A transaction is found among the causes by concat(Workflow, '\0', Key): a set of strings is probed
-- three times faster than one of (Workflow, Key) tuples, and it is exact because no workflow name holds
-- a NUL (the settings refuse one). Joins are slower still: only the transactions with causes join them.

CREATE TABLE IF NOT EXISTS workflow_targets ${ON_CLUSTER} (
    RecordedAt DateTime64(3),
    Keys Array(String),
    Seconds Array(Float64)
) ENGINE = ${Replicated}ReplacingMergeTree(RecordedAt)
ORDER BY tuple();

CREATE TABLE IF NOT EXISTS transaction_report ${ON_CLUSTER} (
    RefreshedAt DateTime64(9),
    Part LowCardinality(String),
    Age UInt32,
    Workflow LowCardinality(String),
    Facility String,
    FacilityName String,
    Criticality LowCardinality(String),
    Day Date,
    CauseKind LowCardinality(String),
    CauseComponent String,
    Started UInt64,
    Completed UInt64,
    StuckNow UInt64,
    Stalled UInt64,
    ValueStalled Float64,
    ValueStuck Float64,
    Seconds AggregateFunction(quantiles(0.5, 0.95), Float64),
    Within UInt64,
    Target Float64,
    Worst AggregateFunction(groupArraySorted(10), Tuple(Float64, Float64, String, String, String, String, String,
                                                         String, String, DateTime64(9), String, String, String))
) ENGINE = MergeTree
ORDER BY (Part, Age)
TTL toDateTime(RefreshedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

CREATE MATERIALIZED VIEW IF NOT EXISTS transaction_report_mv ${ON_CLUSTER}
REFRESH EVERY 120 SECOND
TO transaction_report
AS SELECT now64(9) AS RefreshedAt,
       multiIf(grouping(Workflow) = 0, 'workflow', grouping(Facility) = 0, 'facility', 'day') AS Part,
       Age, Workflow, Facility, any(name) AS FacilityName, any(tier) AS Criticality, Day, '' AS CauseKind,
       '' AS CauseComponent, count() AS Started, countIf(State = 'completed') AS Completed,
       countIf(stuck) AS StuckNow, countIf(stalled) AS Stalled, sumIf(Value, stalled) AS ValueStalled,
       sumIf(Value, stuck) AS ValueStuck, arrayReduce('quantilesState(0.5, 0.95)', emptyArrayFloat64()) AS Seconds,
       toUInt64(0) AS Within, toFloat64(0) AS Target,
       groupArraySortedStateIf(10)((-Priority, -Value, CAST(Workflow, 'String'), Key, CAST(State, 'String'), name,
                                    CAST(tier, 'String'), CAST(CurrentStep, 'String'), CAST(NextStep, 'String'),
                                    StartedAt, CAST(cause_kind, 'String'), cause_component, CauseDetail), stuck)
           AS Worst
FROM (
    SELECT Workflow, Facility, FacilityName AS name, Criticality AS tier, State, Value, Priority, Key, CurrentStep,
           NextStep, StartedAt, CauseKind AS cause_kind, CauseComponent AS cause_component, CauseDetail,
           toDate(StartedAt) AS Day,
           toUnixTimestamp64Nano(now64(9)) - toUnixTimestamp64Nano(StartedAt) AS age_ns,
           toUInt32(if(age_ns <= 0, 0, intDiv(age_ns - 1, 3600000000000) + 1)) AS Age,
           State IN ('stalled', 'blocked', 'failed') AS stuck,
           stuck OR concat(Workflow, '\0', Key) IN (SELECT concat(Workflow, '\0', Key) FROM transaction_causes) AS stalled
    FROM business_transactions FINAL
)
GROUP BY GROUPING SETS ((Age, Workflow), (Age, Facility), (Age, Day))
UNION ALL
SELECT now64(9) AS RefreshedAt, 'cause' AS Part, Age, t.Workflow AS Workflow, '' AS Facility, '' AS FacilityName,
       '' AS Criticality, toDate(0) AS Day, c.Kind AS CauseKind, c.Component AS CauseComponent, count() AS Started,
       toUInt64(0) AS Completed, toUInt64(0) AS StuckNow, toUInt64(0) AS Stalled, toFloat64(0) AS ValueStalled,
       toFloat64(0) AS ValueStuck, arrayReduce('quantilesState(0.5, 0.95)', emptyArrayFloat64()) AS Seconds,
       toUInt64(0) AS Within, toFloat64(0) AS Target,
       arrayReduce('groupArraySortedState(10)',
                   CAST([], 'Array(Tuple(Float64, Float64, String, String, String, String, String, String, String, DateTime64(9), String, String, String))'))
           AS Worst
FROM (
    SELECT Workflow, Key, toUnixTimestamp64Nano(now64(9)) - toUnixTimestamp64Nano(StartedAt) AS age_ns,
           toUInt32(if(age_ns <= 0, 0, intDiv(age_ns - 1, 3600000000000) + 1)) AS Age
    FROM business_transactions FINAL
    WHERE concat(Workflow, '\0', Key) IN (SELECT concat(Workflow, '\0', Key) FROM transaction_causes WHERE Kind != '')
) AS t
INNER JOIN (
    SELECT DISTINCT Workflow, Key, Kind, Component FROM transaction_causes WHERE Kind != ''
) AS c ON t.Workflow = c.Workflow AND t.Key = c.Key
GROUP BY Age, Workflow, CauseKind, CauseComponent
UNION ALL
SELECT now64(9) AS RefreshedAt, 'cycle' AS Part, Window AS Age, Workflow, '' AS Facility, '' AS FacilityName,
       Criticality, toDate(0) AS Day, '' AS CauseKind, '' AS CauseComponent, toUInt64(0) AS Started,
       count() AS Completed, toUInt64(0) AS StuckNow, toUInt64(0) AS Stalled, toFloat64(0) AS ValueStalled,
       toFloat64(0) AS ValueStuck, quantilesState(0.5, 0.95)(seconds) AS Seconds, countIf(seconds <= target) AS Within,
       any(target) AS Target,
       arrayReduce('groupArraySortedState(10)',
                   CAST([], 'Array(Tuple(Float64, Float64, String, String, String, String, String, String, String, DateTime64(9), String, String, String))'))
           AS Worst
FROM (
    SELECT Workflow, Criticality, UpdatedAt,
           (toUnixTimestamp64Nano(UpdatedAt) - toUnixTimestamp64Nano(StartedAt)) / 1e9 AS seconds,
           transform(concat(Workflow, '|', Criticality), (SELECT argMax(Keys, RecordedAt) FROM workflow_targets),
                     (SELECT argMax(Seconds, RecordedAt) FROM workflow_targets), 0.) AS target
    FROM business_transactions FINAL
    WHERE State = 'completed' AND UpdatedAt < now64(9) AND UpdatedAt >= now64(9) - toIntervalSecond(7776000)
)
ARRAY JOIN arrayFilter(w -> UpdatedAt >= now64(9) - toIntervalSecond(w), [86400, 604800, 1209600, 2592000, 7776000])
    AS Window
GROUP BY Window, Workflow, Criticality
