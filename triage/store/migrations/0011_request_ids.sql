-- Every stored row names the accepted request it came from (TriageRequest, the write-ahead log's id
-- of that request; 0 for rows written before this migration or with the log switched off). After a
-- crash, the requests read back from the log are looked up by it, so a replay writes only what the
-- store does not already hold (collector/wal.py, collector/pipeline.py). A minmax index keeps that
-- look-up to the few granules written last.
ALTER TABLE otel_traces ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_traces ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;
ALTER TABLE otel_logs ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_logs ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;
ALTER TABLE otel_metrics_gauge ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_metrics_gauge ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;
ALTER TABLE otel_metrics_sum ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_metrics_sum ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;
ALTER TABLE otel_metrics_histogram ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_metrics_histogram ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;
ALTER TABLE otel_metrics_exponential_histogram ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_metrics_exponential_histogram ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;
ALTER TABLE otel_metrics_summary ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE otel_metrics_summary ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1;

-- The native path carries the id as field 100 of the ExportTraceServiceRequest (appended to the
-- serialized request; collector/proto/otlp_traces_projection.proto declares it), and the view copies it
-- to every span of the request. The view is recreated with that one column added; nothing is inserted
-- while migrations run (they run before the write pipeline starts).
ALTER TABLE otel_traces_otlp_in ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS triage_request UInt64;
DROP VIEW IF EXISTS otel_traces_otlp_in_mv ${ON_CLUSTER};
CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_otlp_in_mv ${ON_CLUSTER}
TO otel_traces
AS SELECT
    fromUnixTimestamp64Nano(toInt64(s.start_time_unix_nano)) AS Timestamp,
    lower(hex(s.trace_id)) AS TraceId,
    lower(hex(s.span_id)) AS SpanId,
    lower(hex(s.parent_span_id)) AS ParentSpanId,
    s.trace_state AS TraceState,
    s.name AS SpanName,
    transform(s.kind, [0, 1, 2, 3, 4, 5],
              ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'], 'Unspecified') AS SpanKind,
    ResourceAttributes['service.name'] AS ServiceName,
    ResourceAttributes,
    ss.scope.name AS ScopeName,
    ss.scope.version AS ScopeVersion,
    mapFromArrays(
        arrayMap(a -> a.key, s.attributes),
        arrayMap(a -> coalesce(a.value.string_value, toString(a.value.int_value), toString(a.value.double_value),
                               toString(a.value.bool_value), base64Encode(a.value.bytes_value), ''),
                 s.attributes)) AS SpanAttributes,
    if(s.end_time_unix_nano >= s.start_time_unix_nano,
       s.end_time_unix_nano - s.start_time_unix_nano, 0) AS Duration,
    transform(s.status.code, [0, 1, 2], ['Unset', 'Ok', 'Error'], 'Unset') AS StatusCode,
    s.status.message AS StatusMessage,
    arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano)), s.events) AS `Events.Timestamp`,
    arrayMap(e -> e.name, s.events) AS `Events.Name`,
    arrayMap(e -> mapFromArrays(
        arrayMap(a -> a.key, e.attributes),
        arrayMap(a -> coalesce(a.value.string_value, toString(a.value.int_value), toString(a.value.double_value),
                               toString(a.value.bool_value), base64Encode(a.value.bytes_value), ''),
                 e.attributes)), s.events) AS `Events.Attributes`,
    arrayMap(l -> lower(hex(l.trace_id)), s.links) AS `Links.TraceId`,
    arrayMap(l -> lower(hex(l.span_id)), s.links) AS `Links.SpanId`,
    arrayMap(l -> l.trace_state, s.links) AS `Links.TraceState`,
    arrayMap(l -> mapFromArrays(
        arrayMap(a -> a.key, l.attributes),
        arrayMap(a -> coalesce(a.value.string_value, toString(a.value.int_value), toString(a.value.double_value),
                               toString(a.value.bool_value), base64Encode(a.value.bytes_value), ''),
                 l.attributes)), s.links) AS `Links.Attributes`,
    triage_request AS TriageRequest
FROM
(
    SELECT
        triage_request,
        rs.scope_spans AS scope_spans,
        mapFromArrays(
            arrayMap(a -> a.key, rs.resource.attributes),
            arrayMap(a -> coalesce(a.value.string_value, toString(a.value.int_value),
                                   toString(a.value.double_value), toString(a.value.bool_value),
                                   base64Encode(a.value.bytes_value), ''),
                     rs.resource.attributes)) AS ResourceAttributes
    FROM otel_traces_otlp_in
    ARRAY JOIN resource_spans AS rs
)
ARRAY JOIN scope_spans AS ss
ARRAY JOIN ss.spans AS s;
