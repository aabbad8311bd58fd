-- Alerting (alerts/): the state of every alert instance, its history, silences, rules created
-- through the API and deliveries that gave up. One evaluator writes these per store.

-- Current state of every alert instance (a rule and its group's labels, named by Fingerprint);
-- the newest Version wins. Status: pending (condition holds, `for:` not yet elapsed), firing,
-- resolved, inactive (a pending alert whose condition cleared before it fired). A restart loads
-- pending and firing rows back, so `for:` clocks continue and a firing alert is not paged again.
CREATE TABLE IF NOT EXISTS alert_state ${ON_CLUSTER} (
    Fingerprint String,
    Rule LowCardinality(String),
    Status LowCardinality(String),
    Severity LowCardinality(String),
    Labels Map(String, String),
    Annotations Map(String, String),
    ActiveSince DateTime64(3, 'UTC'),
    FiredAt Nullable(DateTime64(3, 'UTC')),
    ResolvedAt Nullable(DateTime64(3, 'UTC')),
    UpdatedAt DateTime64(3, 'UTC'),
    Count UInt64,
    Value Float64,
    Keys Array(String),
    AmResolvedSent UInt8,
    Version UInt64
) ENGINE = ${Replicated}ReplacingMergeTree(Version)
ORDER BY Fingerprint
TTL toDateTime(UpdatedAt) + toIntervalDay(${BUSINESS_TTL_DAYS});

-- What happened to alerts, append-only: transitions (pending, firing, resolved, cleared) and
-- deliveries (delivered, dead_letter). DeliveryId is stable per alert episode, status and
-- channel, so a restart knows what was already delivered.
CREATE TABLE IF NOT EXISTS alert_events ${ON_CLUSTER} (
    At DateTime64(3, 'UTC'),
    Fingerprint String,
    Rule LowCardinality(String),
    Kind LowCardinality(String),
    Channel String,
    DeliveryId String,
    Detail String,
    Labels Map(String, String),
    INDEX idx_delivery DeliveryId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ${Replicated}MergeTree()
PARTITION BY toYYYYMM(At)
ORDER BY (Fingerprint, At)
TTL toDateTime(At) + toIntervalDay(${BUSINESS_TTL_DAYS});

-- Silences: alerts whose labels match every matcher (JSON list of {name, value, is_regex,
-- is_equal}) between StartsAt and EndsAt send nothing. Expiring one moves EndsAt to now.
CREATE TABLE IF NOT EXISTS alert_silences ${ON_CLUSTER} (
    Id String,
    Matchers String,
    StartsAt DateTime64(3, 'UTC'),
    EndsAt DateTime64(3, 'UTC'),
    CreatedBy String,
    Comment String,
    CreatedAt DateTime64(3, 'UTC'),
    Version UInt64
) ENGINE = ${Replicated}ReplacingMergeTree(Version)
ORDER BY Id;

-- Rules created through POST /api/v1/alerts/rules (Body is the rule as YAML would write it, JSON).
CREATE TABLE IF NOT EXISTS alert_rules ${ON_CLUSTER} (
    Name String,
    Body String,
    Deleted UInt8,
    UpdatedAt DateTime64(3, 'UTC'),
    Version UInt64
) ENGINE = ${Replicated}ReplacingMergeTree(Version)
ORDER BY Name;

-- Notifications that could not be delivered after every retry, with the payload to resend.
CREATE TABLE IF NOT EXISTS alert_dead_letters ${ON_CLUSTER} (
    At DateTime64(3, 'UTC'),
    DeliveryId String,
    Channel String,
    Target String,
    Fingerprint String,
    Rule LowCardinality(String),
    Status LowCardinality(String),
    Attempts UInt32,
    LastError String,
    Payload String
) ENGINE = ${Replicated}MergeTree()
PARTITION BY toYYYYMM(At)
ORDER BY (At, DeliveryId)
TTL toDateTime(At) + toIntervalDay(${BUSINESS_TTL_DAYS});
