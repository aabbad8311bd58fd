"""Per-item validation of decoded OTLP requests: drop the invalid items, keep and count the rest.

OTLP asks a receiver to accept what it can and report the rest in `partial_success`; this module
removes invalid spans, log records and data points in place and says why, by position.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _prune(
    message: Any, path: tuple[str, str, str], problem_of: Callable[[Any], str], weight: Callable[[Any], int]
) -> tuple[int, int, list[str]]:
    """Remove every item (at resource[r].scope[s].item[i] under `path`) that has a problem, in place.

    Returns the accepted and rejected counts (each item counts `weight(item)`) and the problems by position.
    """
    accepted = rejected = 0
    errors: list[str] = []
    outer, middle, inner = path
    for r, resource in enumerate(getattr(message, outer)):
        for s, scope in enumerate(getattr(resource, middle)):
            items = getattr(scope, inner)
            for i in range(len(items) - 1, -1, -1):
                problem = problem_of(items[i])
                if problem:
                    rejected += max(weight(items[i]), 1)
                    errors.append(f"{outer}[{r}].{middle}[{s}].{inner}[{i}]: {problem}")
                    del items[i]
                else:
                    accepted += weight(items[i])
    return accepted, rejected, errors


def _one(_: Any) -> int:
    return 1


def validate_traces(message: Any) -> Decoded:
    """Drop spans with invalid ids."""
    accepted, rejected, errors = _prune(message, ("resource_spans", "scope_spans", "spans"), _span_problem, _one)
    return Decoded("traces", message, accepted, rejected, _summary(errors, "spans"))


def _record_problem(record: Any) -> str:
    for field, size in (("trace_id", 16), ("span_id", 8)):
        problem = _bad_id(getattr(record, field), size, False)
        if problem:
            return f"{field} {problem}"
    return ""


def validate_logs(message: Any) -> Decoded:
    """Drop log records whose trace or span id has the wrong length."""
    path = ("resource_logs", "scope_logs", "log_records")
    accepted, rejected, errors = _prune(message, path, _record_problem, _one)
    return Decoded("logs", message, accepted, rejected, _summary(errors, "log records"))


def _metric_problem(metric: Any) -> str:
    kind = metric.WhichOneof("data")
    if not metric.name:
        return "metric has no name"
    if kind is None:
        return f"metric {metric.name!r} has no data (gauge, sum, histogram, ...)"
    if kind == "histogram" and any(
        p.bucket_counts and len(p.bucket_counts) != len(p.explicit_bounds) + 1 for p in metric.histogram.data_points
    ):
        return f"histogram {metric.name!r} has bucket_counts not one longer than explicit_bounds"
    return ""


def _points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def validate_metrics(message: Any) -> Decoded:
    """Drop metrics with no name or no data; count data points."""
    path = ("resource_metrics", "scope_metrics", "metrics")
    accepted, rejected, errors = _prune(message, path, _metric_problem, _points)
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
