-- The OpenTelemetry Collector's ClickHouse exporter (otelcol-contrib `clickhouse`, with
-- `create_schema: false`) may write straight into Triage's raw tables (deploy/otelcol/). Its INSERTs
-- name only the exporter's own columns (exporter/clickhouseexporter/internal/sqltemplates/*_insert.sql
-- in open-telemetry/opentelemetry-collector-contrib), so every other column takes its DEFAULT:
--
-- * otel_logs.ObservedTimestamp is not among them (the exporter puts the observed time into Timestamp
--   only when a record has no event time), and without a DEFAULT it read 1970. The insert time is the
--   nearest thing to when the collector observed the record; Triage's own path always writes it.
-- * TriageIngestedAt (0006, DEFAULT now64(3)) and TriageRequest (0011, DEFAULT 0) already default, so
--   exporter-written rows land in the correlator's watermark window at the time they are inserted.
--
-- The exporter's traces table also has two ALIAS columns, key=value items of the attribute maps, that
-- ClickStack/HyperDX and the exporter's full-text indexes query (has(SpanAttributeItems, 'k=v')).
-- ALIAS columns are computed on read: nothing is stored, and INSERTs never name them.
ALTER TABLE otel_logs ${ON_CLUSTER} MODIFY COLUMN ObservedTimestamp DateTime64(9) DEFAULT now64(9) CODEC(Delta, ZSTD(1));
ALTER TABLE otel_traces ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))'));
ALTER TABLE otel_traces ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))'));
