-- Queue-lag samples: one row per queue per poll (or per pushed sample). Nullable columns are
-- what a broker could not tell (no age without message timestamps, no consumer count from a lag
-- exporter); Error is non-empty for a failed poll, whose other values are then null.
-- InTotal/OutTotal are the broker's cumulative counters (published, consumed offsets) that rates
-- are derived from; RateSource says where RateIn/RateOut came from: broker, counters, backlog.

CREATE TABLE IF NOT EXISTS queue_lag ${ON_CLUSTER} (
    Timestamp DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    Queue LowCardinality(String) CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1)),
    System LowCardinality(String) CODEC(ZSTD(1)),
    Destination String CODEC(ZSTD(1)),
    ConsumerGroup String CODEC(ZSTD(1)),
    Backlog Nullable(Int64) CODEC(ZSTD(1)),
    Unacked Nullable(Int64) CODEC(ZSTD(1)),
    Consumers Nullable(Int32) CODEC(ZSTD(1)),
    OldestAgeSeconds Nullable(Float64) CODEC(ZSTD(1)),
    RateIn Nullable(Float64) CODEC(ZSTD(1)),
    RateOut Nullable(Float64) CODEC(ZSTD(1)),
    InTotal Nullable(Float64) CODEC(ZSTD(1)),
    OutTotal Nullable(Float64) CODEC(ZSTD(1)),
    RateSource LowCardinality(String) CODEC(ZSTD(1)),
    Error String CODEC(ZSTD(1))
) ENGINE = ${Replicated}MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (Queue, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(${RAW_TTL_DAYS})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;
