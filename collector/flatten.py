"""Flatten decoded OTLP messages into column lists for the otel_* tables (the Python path).

Values follow the OpenTelemetry Collector ClickHouse exporter: attribute maps are
Map(String, String), non-string values rendered as text (arrays and maps as compact JSON).
Traces normally take the native Protobuf path (collector.native); this path serves requests
with nested attribute values, and logs and metrics.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")


def format_double(value: float) -> str:
    """Like ClickHouse's toString(Float64): integral values without '.0'."""
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    if "e" in text:  # ClickHouse writes 1e-7 and 1e21 where Python writes 1e-07 and 1e+21
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else ""
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def _natural(value: Any) -> Any:
    """An AnyValue as a plain JSON-able Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_natural(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _natural(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def any_value_str(value: Any) -> str:
    """An AnyValue as the text stored in a Map(String, String) column or a log Body."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return json.dumps(_natural(value), separators=(",", ":"), ensure_ascii=False)


def attributes(kvs: Iterable[Any]) -> dict[str, str]:
    """A KeyValue list as a str→str dict."""
    return {kv.key: any_value_str(kv.value) for kv in kvs}


def trace_columns(messages: Iterable[Any]) -> dict[str, list[Any]]:
    """otel_traces columns for every span of the given ExportTraceServiceRequests."""
    cols: dict[str, list[Any]] = {name: [] for name in TRACE_COLUMNS}
    for message in messages:
        for resource_spans in message.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            service = resource.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
                for span in scope_spans.spans:
                    _append_span(cols, span, resource, service, scope_name, scope_version)
    return cols


def _append_span(
    cols: dict[str, list[Any]],
    span: Any,
    resource: dict[str, str],
    service: str,
    scope_name: str,
    scope_version: str,
) -> None:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    cols["Timestamp"].append(start)
    cols["TraceId"].append(span.trace_id.hex())
    cols["SpanId"].append(span.span_id.hex())
    cols["ParentSpanId"].append(span.parent_span_id.hex())
    cols["TraceState"].append(span.trace_state)
    cols["SpanName"].append(span.name)
    cols["SpanKind"].append(SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "Unspecified")
    cols["ServiceName"].append(service)
    cols["ResourceAttributes"].append(resource)
    cols["ScopeName"].append(scope_name)
    cols["ScopeVersion"].append(scope_version)
    cols["SpanAttributes"].append(attributes(span.attributes))
    cols["Duration"].append(end - start if end >= start else 0)
    code = span.status.code
    cols["StatusCode"].append(STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else "Unset")
    cols["StatusMessage"].append(span.status.message)
    events, links = span.events, span.links
    cols["Events.Timestamp"].append([e.time_unix_nano for e in events])
    cols["Events.Name"].append([e.name for e in events])
    cols["Events.Attributes"].append([attributes(e.attributes) for e in events])
    cols["Links.TraceId"].append([link.trace_id.hex() for link in links])
    cols["Links.SpanId"].append([link.span_id.hex() for link in links])
    cols["Links.TraceState"].append([link.trace_state for link in links])
    cols["Links.Attributes"].append([attributes(link.attributes) for link in links])


TRACE_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

LOG_COLUMNS = (
    "Timestamp",
    "ObservedTimestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "EventName",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
)


def log_columns(messages: Iterable[Any]) -> dict[str, list[Any]]:
    """otel_logs columns for every record of the given ExportLogsServiceRequests."""
    cols: dict[str, list[Any]] = {name: [] for name in LOG_COLUMNS}
    for message in messages:
        for resource_logs in message.resource_logs:
            resource = attributes(resource_logs.resource.attributes)
            service = resource.get("service.name", "")
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope
                scope_attrs = attributes(scope.attributes)
                for record in scope_logs.log_records:
                    # A record with no event time is stamped with its observed time, as the spec advises.
                    ts = record.time_unix_nano or record.observed_time_unix_nano
                    cols["Timestamp"].append(ts)
                    cols["ObservedTimestamp"].append(record.observed_time_unix_nano or ts)
                    cols["TraceId"].append(record.trace_id.hex())
                    cols["SpanId"].append(record.span_id.hex())
                    cols["TraceFlags"].append(record.flags & 0xFF)
                    cols["SeverityText"].append(record.severity_text)
                    cols["SeverityNumber"].append(record.severity_number)
                    cols["ServiceName"].append(service)
                    cols["Body"].append(any_value_str(record.body))
                    cols["EventName"].append(record.event_name)
                    cols["ResourceSchemaUrl"].append(resource_logs.schema_url)
                    cols["ResourceAttributes"].append(resource)
                    cols["ScopeSchemaUrl"].append(scope_logs.schema_url)
                    cols["ScopeName"].append(scope.name)
                    cols["ScopeVersion"].append(scope.version)
                    cols["ScopeAttributes"].append(scope_attrs)
                    cols["LogAttributes"].append(attributes(record.attributes))
    return cols


_METRIC_COMMON = (
    "ResourceAttributes",
    "ResourceSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "ScopeDroppedAttrCount",
    "ScopeSchemaUrl",
    "ServiceName",
    "MetricName",
    "MetricDescription",
    "MetricUnit",
    "Attributes",
    "StartTimeUnix",
    "TimeUnix",
    "Flags",
)
_EXEMPLARS = (
    "Exemplars.FilteredAttributes",
    "Exemplars.TimeUnix",
    "Exemplars.Value",
    "Exemplars.SpanId",
    "Exemplars.TraceId",
)
METRIC_TABLES = {
    "gauge": ("otel_metrics_gauge", _METRIC_COMMON + ("Value",) + _EXEMPLARS),
    "sum": (
        "otel_metrics_sum",
        _METRIC_COMMON + ("Value", "AggregationTemporality", "IsMonotonic") + _EXEMPLARS,
    ),
    "histogram": (
        "otel_metrics_histogram",
        _METRIC_COMMON
        + ("Count", "Sum", "BucketCounts", "ExplicitBounds", "Min", "Max", "AggregationTemporality")
        + _EXEMPLARS,
    ),
    "exponential_histogram": (
        "otel_metrics_exponential_histogram",
        _METRIC_COMMON
        + (
            "Count",
            "Sum",
            "Scale",
            "ZeroCount",
            "PositiveOffset",
            "PositiveBucketCounts",
            "NegativeOffset",
            "NegativeBucketCounts",
            "Min",
            "Max",
            "AggregationTemporality",
        )
        + _EXEMPLARS,
    ),
    "summary": (
        "otel_metrics_summary",
        _METRIC_COMMON + ("Count", "Sum", "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value"),
    ),
}


def _number(point: Any) -> float:
    kind = point.WhichOneof("value")
    return float(getattr(point, kind)) if kind else 0.0


def _point_specific(kind: str, metric: Any, point: Any) -> dict[str, Any]:
    data = getattr(metric, kind)
    if kind == "gauge":
        return {"Value": _number(point)}
    if kind == "sum":
        return {
            "Value": _number(point),
            "AggregationTemporality": data.aggregation_temporality,
            "IsMonotonic": data.is_monotonic,
        }
    if kind == "histogram":
        return {
            "Count": point.count,
            "Sum": point.sum,
            "BucketCounts": list(point.bucket_counts),
            "ExplicitBounds": list(point.explicit_bounds),
            "Min": point.min,
            "Max": point.max,
            "AggregationTemporality": data.aggregation_temporality,
        }
    if kind == "exponential_histogram":
        return {
            "Count": point.count,
            "Sum": point.sum,
            "Scale": point.scale,
            "ZeroCount": point.zero_count,
            "PositiveOffset": point.positive.offset,
            "PositiveBucketCounts": list(point.positive.bucket_counts),
            "NegativeOffset": point.negative.offset,
            "NegativeBucketCounts": list(point.negative.bucket_counts),
            "Min": point.min,
            "Max": point.max,
            "AggregationTemporality": data.aggregation_temporality,
        }
    return {
        "Count": point.count,
        "Sum": point.sum,
        "ValueAtQuantiles.Quantile": [q.quantile for q in point.quantile_values],
        "ValueAtQuantiles.Value": [q.value for q in point.quantile_values],
    }


def _exemplars(point: Any) -> dict[str, Any]:
    ex = list(getattr(point, "exemplars", []))
    return {
        "Exemplars.FilteredAttributes": [attributes(e.filtered_attributes) for e in ex],
        "Exemplars.TimeUnix": [e.time_unix_nano for e in ex],
        "Exemplars.Value": [_number(e) for e in ex],
        "Exemplars.SpanId": [e.span_id.hex() for e in ex],
        "Exemplars.TraceId": [e.trace_id.hex() for e in ex],
    }


def metric_columns(messages: Iterable[Any]) -> dict[str, dict[str, list[Any]]]:
    """Per metrics table, its columns for every data point of the given ExportMetricsServiceRequests."""
    tables: dict[str, dict[str, list[Any]]] = {}
    for message in messages:
        for resource_metrics in message.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            service = resource.get("service.name", "")
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope
                common = {
                    "ResourceAttributes": resource,
                    "ResourceSchemaUrl": resource_metrics.schema_url,
                    "ScopeName": scope.name,
                    "ScopeVersion": scope.version,
                    "ScopeAttributes": attributes(scope.attributes),
                    "ScopeDroppedAttrCount": scope.dropped_attributes_count,
                    "ScopeSchemaUrl": scope_metrics.schema_url,
                    "ServiceName": service,
                }
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        continue
                    table, names = METRIC_TABLES[kind]
                    cols = tables.setdefault(table, {name: [] for name in names})
                    for point in getattr(metric, kind).data_points:
                        row = dict(common)
                        row.update(
                            MetricName=metric.name,
                            MetricDescription=metric.description,
                            MetricUnit=metric.unit,
                            Attributes=attributes(point.attributes),
                            StartTimeUnix=point.start_time_unix_nano,
                            TimeUnix=point.time_unix_nano,
                            Flags=point.flags,
                        )
                        row.update(_point_specific(kind, metric, point))
                        if kind != "summary":
                            row.update(_exemplars(point))
                        for name in names:
                            cols[name].append(row[name])
    return tables
