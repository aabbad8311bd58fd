"""Per-item validation of decoded OTLP requests: drop the invalid items, keep and count the rest.

OTLP asks a receiver to accept what it can and report the rest in `partial_success`; this module
removes invalid spans, log records and data points in place and says why, by position.
"""

from __future__ import annotations

from typing import Any

from collector.otlp import Decoded, Signal

_MAX_ERRORS_NAMED = 5


def _bad_id(value: bytes, size: int, required: bool) -> str:
    if not value:
        return "is empty" if required else ""
    if len(value) != size:
        return f"has {len(value)} bytes, want {size} ({size * 2} hex digits)"
    if required and value == b"\x00" * size:
        return "is all zeros"
    return ""


def _span_problem(span: Any) -> str:
    for field, size, required in (("trace_id", 16, True), ("span_id", 8, True), ("parent_span_id", 8, False)):
        problem = _bad_id(getattr(span, field), size, required)
        if problem:
            return f"{field} {problem}"
    for link in span.links:
        for field, size in (("trace_id", 16), ("span_id", 8)):
            problem = _bad_id(getattr(link, field), size, True)
            if problem:
                return f"link {field} {problem}"
    return ""


def validate_traces(message: Any) -> Decoded:
    """Drop spans with invalid ids; say whether any attribute holds an array or kvlist value."""
    accepted = rejected = 0
    errors: list[str] = []
    for r, resource_spans in enumerate(message.resource_spans):
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            spans = scope_spans.spans
            for i in range(len(spans) - 1, -1, -1):
                span = spans[i]
                problem = _span_problem(span)
                if problem:
                    rejected += 1
                    errors.append(f"resource_spans[{r}].scope_spans[{s}].spans[{i}]: {problem}")
                    del spans[i]
                    continue
                accepted += 1
    return Decoded("traces", message, accepted, rejected, _summary(errors, "spans"))


def validate_logs(message: Any) -> Decoded:
    """Drop log records whose trace or span id has the wrong length."""
    accepted = rejected = 0
    errors: list[str] = []
    for r, resource_logs in enumerate(message.resource_logs):
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            records = scope_logs.log_records
            for i in range(len(records) - 1, -1, -1):
                record = records[i]
                problem = ""
                for field, size in (("trace_id", 16), ("span_id", 8)):
                    problem = _bad_id(getattr(record, field), size, False)
                    if problem:
                        problem = f"{field} {problem}"
                        break
                if problem:
                    rejected += 1
                    errors.append(f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]: {problem}")
                    del records[i]
                else:
                    accepted += 1
    return Decoded("logs", message, accepted, rejected, _summary(errors, "log records"))


_POINT_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def validate_metrics(message: Any) -> Decoded:
    """Drop metrics with no name or no data; count data points."""
    accepted = rejected = 0
    errors: list[str] = []
    for r, resource_metrics in enumerate(message.resource_metrics):
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            metrics = scope_metrics.metrics
            for i in range(len(metrics) - 1, -1, -1):
                metric = metrics[i]
                kind = metric.WhichOneof("data")
                points = len(getattr(metric, kind).data_points) if kind else 0
                problem = ""
                if not metric.name:
                    problem = "metric has no name"
                elif kind is None:
                    problem = f"metric {metric.name!r} has no data (gauge, sum, histogram, ...)"
                elif kind == "histogram" and any(
                    p.bucket_counts and len(p.bucket_counts) != len(p.explicit_bounds) + 1
                    for p in metric.histogram.data_points
                ):
                    problem = f"histogram {metric.name!r} has bucket_counts not one longer than explicit_bounds"
                if problem:
                    rejected += max(points, 1)
                    errors.append(f"resource_metrics[{r}].scope_metrics[{s}].metrics[{i}]: {problem}")
                    del metrics[i]
                else:
                    accepted += points
    return Decoded("metrics", message, accepted, rejected, _summary(errors, "data points"))


def _summary(errors: list[str], what: str) -> str:
    if not errors:
        return ""
    named = "; ".join(reversed(errors[-_MAX_ERRORS_NAMED:]))
    more = f" (and {len(errors) - _MAX_ERRORS_NAMED} more)" if len(errors) > _MAX_ERRORS_NAMED else ""
    return f"{len(errors)} invalid {what} rejected: {named}{more}"


VALIDATORS = {"traces": validate_traces, "logs": validate_logs, "metrics": validate_metrics}


def validate(signal: Signal, message: Any) -> Decoded:
    """Validate a decoded request of the given signal in place."""
    return VALIDATORS[signal](message)
