-- Business correlation (correlator/): ingest time on raw rows drives the watermark, so late and
-- out-of-order data is picked up by when it arrived, not by when it happened.

ALTER TABLE otel_traces ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageIngestedAt DateTime64(3) DEFAULT now64(3);

ALTER TABLE otel_logs ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageIngestedAt DateTime64(3) DEFAULT now64(3);

-- Which business transaction a trace belongs to: from a key attribute on any of its spans, a
-- key pattern in a log carrying its trace id, or a link/message id from a trace that has one.
CREATE TABLE IF NOT EXISTS trace_keys ${ON_CLUSTER} (
    TraceId String,
    Workflow LowCardinality(String),
    Key String,
    Via LowCardinality(String),
    FirstSeen DateTime64(9),
    INDEX idx_key Key TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ${Replicated}ReplacingMergeTree(FirstSeen)
ORDER BY (TraceId, Workflow, Key)
TTL toDateTime(FirstSeen) + toIntervalDay(${BUSINESS_TTL_DAYS});

-- Asynchronous hops between traces: span links and producer/consumer message ids.
CREATE TABLE IF NOT EXISTS trace_edges ${ON_CLUSTER} (
    FromTrace String,
    ToTrace String,
    Via LowCardinality(String),
    SeenAt DateTime64(9),
    INDEX idx_to ToTrace TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ${Replicated}ReplacingMergeTree(SeenAt)
ORDER BY (FromTrace, ToTrace)
TTL toDateTime(SeenAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

-- One row per matched step occurrence (Step != '') or per piece of evidence (errors, messages).
CREATE TABLE IF NOT EXISTS business_events ${ON_CLUSTER} (
    Workflow LowCardinality(String),
    Key String,
    EventId String,
    Step LowCardinality(String),
    At DateTime64(9),
    Source LowCardinality(String),
    Service LowCardinality(String),
    TraceId String,
    SpanId String,
    SpanKind LowCardinality(String),
    Status LowCardinality(String),
    Failure UInt8,
    Detail String,
    Peer String,
    Destination String,
    MessageId String,
    Facility String,
    Value Float64,
    IngestedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ${Replicated}ReplacingMergeTree(IngestedAt)
PARTITION BY toYYYYMM(At)
ORDER BY (Workflow, Key, EventId, Step)
TTL toDateTime(At) + toIntervalDay(${BUSINESS_TTL_DAYS});

-- Current state of every transaction: the newest Version wins.
CREATE TABLE IF NOT EXISTS business_transactions ${ON_CLUSTER} (
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
    Version UInt64,
    INDEX idx_state State TYPE set(8) GRANULARITY 1
) ENGINE = ${Replicated}ReplacingMergeTree(Version)
ORDER BY (Workflow, Key)
TTL toDateTime(UpdatedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

-- The cause found for a stuck transaction, with its evidence (JSON: trace ids, log lines, queue samples).
CREATE TABLE IF NOT EXISTS transaction_causes ${ON_CLUSTER} (
    Workflow LowCardinality(String),
    Key String,
    Kind LowCardinality(String),
    Component String,
    Detail String,
    Since Nullable(DateTime64(9)),
    Evidence String,
    DetectedAt DateTime64(3),
    Active UInt8,
    Version UInt64
) ENGINE = ${Replicated}ReplacingMergeTree(Version)
ORDER BY (Workflow, Key, Kind, Component)
TTL toDateTime(DetectedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

CREATE TABLE IF NOT EXISTS correlator_state ${ON_CLUSTER} (
    Name String,
    Watermark DateTime64(3),
    UpdatedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ${Replicated}ReplacingMergeTree(UpdatedAt)
ORDER BY Name;

-- Per-cycle scratch sets of the correlator (one correlator per database).
CREATE TABLE IF NOT EXISTS correlator_touched ${ON_CLUSTER} (TraceId String) ENGINE = Memory;

CREATE TABLE IF NOT EXISTS correlator_affected ${ON_CLUSTER} (Workflow String, Key String) ENGINE = Memory;
