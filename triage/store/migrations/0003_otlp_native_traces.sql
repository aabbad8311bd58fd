-- The native trace path (collector/native.py): OTLP ExportTraceServiceRequests go to
-- otel_traces_otlp_in in ClickHouse's `Protobuf` format (one row per request, decoded in C++
-- with the projection schema collector/proto/otlp_traces_projection.proto), and
-- otel_traces_otlp_in_mv flattens them (ARRAY JOIN) into otel_traces, one row per span.
-- The Null engine keeps nothing: the view sees each inserted block, then it is gone.
--
-- Column and tuple element names are the projection's field names (ClickHouse matches them).
-- AnyValue is Tuple(kind, <one column per scalar member>): with the insert setting
-- input_format_protobuf_oneof_presence = 1 ClickHouse sets `kind` to the oneof member found on
-- the wire ('none' when it was absent or an array/kvlist, which the caller routes elsewhere).
-- Values render as in collector/flatten.py: bool 'true'/'false', int decimal,
-- double toString(Float64), bytes base64, ids lowercase hex.

CREATE TABLE IF NOT EXISTS otel_traces_otlp_in ${ON_CLUSTER} (
    resource_spans Array(Tuple(
        resource Tuple(
            attributes Array(Tuple(
                key String,
                value Tuple(
                    kind Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                               'double_value' = 4, 'bytes_value' = 7),
                    string_value String, bool_value Bool, int_value Int64, double_value Float64,
                    bytes_value String)))),
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
                    value Tuple(
                        kind Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                   'double_value' = 4, 'bytes_value' = 7),
                        string_value String, bool_value Bool, int_value Int64, double_value Float64,
                        bytes_value String))),
                events Array(Tuple(
                    time_unix_nano UInt64,
                    name String,
                    attributes Array(Tuple(
                        key String,
                        value Tuple(
                            kind Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                       'double_value' = 4, 'bytes_value' = 7),
                            string_value String, bool_value Bool, int_value Int64, double_value Float64,
                            bytes_value String))))),
                links Array(Tuple(
                    trace_id String,
                    span_id String,
                    trace_state String,
                    attributes Array(Tuple(
                        key String,
                        value Tuple(
                            kind Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3,
                                       'double_value' = 4, 'bytes_value' = 7),
                            string_value String, bool_value Bool, int_value Int64, double_value Float64,
                            bytes_value String))))),
                status Tuple(message String, code Int32)))))))
) ENGINE = Null;

-- The resource-level map is built once per resource_spans in the subquery, not once per span.
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
        arrayMap(a -> multiIf(
            a.value.kind = 'string_value', a.value.string_value,
            a.value.kind = 'int_value', toString(a.value.int_value),
            a.value.kind = 'double_value', toString(a.value.double_value),
            a.value.kind = 'bool_value', if(a.value.bool_value, 'true', 'false'),
            a.value.kind = 'bytes_value', base64Encode(a.value.bytes_value),
            ''), s.attributes)) AS SpanAttributes,
    if(s.end_time_unix_nano >= s.start_time_unix_nano,
       s.end_time_unix_nano - s.start_time_unix_nano, 0) AS Duration,
    transform(s.status.code, [0, 1, 2], ['Unset', 'Ok', 'Error'], 'Unset') AS StatusCode,
    s.status.message AS StatusMessage,
    arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano)), s.events) AS `Events.Timestamp`,
    arrayMap(e -> e.name, s.events) AS `Events.Name`,
    arrayMap(e -> mapFromArrays(
        arrayMap(a -> a.key, e.attributes),
        arrayMap(a -> multiIf(
            a.value.kind = 'string_value', a.value.string_value,
            a.value.kind = 'int_value', toString(a.value.int_value),
            a.value.kind = 'double_value', toString(a.value.double_value),
            a.value.kind = 'bool_value', if(a.value.bool_value, 'true', 'false'),
            a.value.kind = 'bytes_value', base64Encode(a.value.bytes_value),
            ''), e.attributes)), s.events) AS `Events.Attributes`,
    arrayMap(l -> lower(hex(l.trace_id)), s.links) AS `Links.TraceId`,
    arrayMap(l -> lower(hex(l.span_id)), s.links) AS `Links.SpanId`,
    arrayMap(l -> l.trace_state, s.links) AS `Links.TraceState`,
    arrayMap(l -> mapFromArrays(
        arrayMap(a -> a.key, l.attributes),
        arrayMap(a -> multiIf(
            a.value.kind = 'string_value', a.value.string_value,
            a.value.kind = 'int_value', toString(a.value.int_value),
            a.value.kind = 'double_value', toString(a.value.double_value),
            a.value.kind = 'bool_value', if(a.value.bool_value, 'true', 'false'),
            a.value.kind = 'bytes_value', base64Encode(a.value.bytes_value),
            ''), l.attributes)), s.links) AS `Links.Attributes`
FROM
(
    SELECT
        rs.scope_spans AS scope_spans,
        mapFromArrays(
            arrayMap(a -> a.key, rs.resource.attributes),
            arrayMap(a -> multiIf(
                a.value.kind = 'string_value', a.value.string_value,
                a.value.kind = 'int_value', toString(a.value.int_value),
                a.value.kind = 'double_value', toString(a.value.double_value),
                a.value.kind = 'bool_value', if(a.value.bool_value, 'true', 'false'),
                a.value.kind = 'bytes_value', base64Encode(a.value.bytes_value),
                ''), rs.resource.attributes)) AS ResourceAttributes
    FROM otel_traces_otlp_in
    ARRAY JOIN resource_spans AS rs
)
ARRAY JOIN scope_spans AS ss
ARRAY JOIN ss.spans AS s;
