-- The native trace path (collector/native.py): OTLP ExportTraceServiceRequests are inserted
-- into otel_traces_otlp_in in ClickHouse's `Protobuf` format, one row per request, decoded in
-- C++ with the projection schema collector/proto/otlp_traces_projection.proto; the view
-- otel_traces_otlp_in_mv flattens them (ARRAY JOIN) into otel_traces, one row per span.
-- The Null engine stores nothing: the view sees each inserted block, then it is gone.
--
-- Column and tuple element names are the projection's field names (ClickHouse matches them).
-- AnyValue is a tuple of Nullable columns, one per scalar oneof member: ClickHouse leaves a
-- Nullable column NULL when its field is absent from the wire, so the member that was set is the
-- non-NULL one, even when its value is 0, false or ''. All NULL (no value, or an array/kvlist,
-- which the caller routes to the Python path) renders as ''.
-- Values render as collector/flatten.py does: bool 'true'/'false', int decimal, double
-- toString(Float64), bytes base64, ids lowercase hex, enums by name.

CREATE TABLE IF NOT EXISTS otel_traces_otlp_in ${ON_CLUSTER} (
    resource_spans Array(Tuple(
        resource Tuple(
            attributes Array(Tuple(
                key String,
                value Tuple(string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                            double_value Nullable(Float64), bytes_value Nullable(String))))),
        scope_spans Array(Tuple(
            scope Tuple(name String, version String),
            spans Array(Tuple(
                trace_id String,
                span_id String,
                trace_state String,
                parent_span_id String,
                name String,
                kind Int32,
                start_time_unix_nano UInt64,
                end_time_unix_nano UInt64,
                attributes Array(Tuple(
                    key String,
                    value Tuple(string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                                double_value Nullable(Float64), bytes_value Nullable(String)))),
                events Array(Tuple(
                    time_unix_nano UInt64,
                    name String,
                    attributes Array(Tuple(
                        key String,
                        value Tuple(string_value Nullable(String), bool_value Nullable(Bool),
                                    int_value Nullable(Int64), double_value Nullable(Float64),
                                    bytes_value Nullable(String)))))),
                links Array(Tuple(
                    trace_id String,
                    span_id String,
                    trace_state String,
                    attributes Array(Tuple(
                        key String,
                        value Tuple(string_value Nullable(String), bool_value Nullable(Bool),
                                    int_value Nullable(Int64), double_value Nullable(Float64),
                                    bytes_value Nullable(String)))))),
                status Tuple(message String, code Int32)))))))
) ENGINE = Null;

-- An attribute value is coalesce(string, toString(int), toString(double), toString(bool) ->
-- 'true'/'false', base64(bytes), ''). The resource map is built once per resource_spans, in the
-- subquery, not once per span.
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
                 l.attributes)), s.links) AS `Links.Attributes`
FROM
(
    SELECT
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
