"""Per-item validation of decoded OTLP requests: drop the invalid items, keep and count the rest.

OTLP asks a receiver to accept what it can and report the rest in `partial_success`; this module
removes invalid spans, log records and data points in place and says why, by position.

Retention is honest: an item older than the raw retention would be dropped by the table's TTL as
soon as it landed, so it is refused here, by name, instead of being accepted and vanishing. A span
must have a start time; a log record with no time at all is stamped with the time it was received
(its observed time, as the OTLP specification asks of receivers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class Window:
    """What the store keeps: items from `oldest_ns` on (now minus the raw retention of `days`)."""

    oldest_ns: int
    days: int

    @classmethod
    def of(cls, days: int) -> Window:
        return cls(time.time_ns() - days * 86_400 * 10**9, days)

    def too_old(self, ns: int, what: str) -> str:
        if ns >= self.oldest_ns:
            return ""
        at = datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{what} {at} is older than the raw retention ({self.days}d); it would be dropped at once"


def _span_problem(span: Any, window: Window | None = None) -> str:
    if span.start_time_unix_nano == 0:
        return "start_time_unix_nano is 0 (not set); set the span's start time"
    if window is not None and (old := window.too_old(span.start_time_unix_nano, "span starts")):
        return old
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
            # One pass to judge (nearly always finding nothing), then deletions from the end.
            problems = [(i, problem) for i, item in enumerate(items) if (problem := problem_of(item))]
            if weight is _one:
                accepted += len(items) - len(problems)
            else:
                bad = {i for i, _ in problems}
                accepted += sum(weight(item) for i, item in enumerate(items) if i not in bad)
            for i, problem in reversed(problems):
                rejected += max(weight(items[i]), 1)
                errors.append(f"{outer}[{r}].{middle}[{s}].{inner}[{i}]: {problem}")
                del items[i]
    return accepted, rejected, errors


def _one(_: Any) -> int:
    return 1


_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)


def _span_fine(span: Any, oldest_ns: int) -> bool:
    """The common case in one expression (a third of `_span_problem`'s cost): a span with links, or any
    doubt, goes on to `_span_problem`, which names what is wrong."""
    trace, own, parent = span.trace_id, span.span_id, span.parent_span_id
    return (
        span.start_time_unix_nano > oldest_ns
        and len(trace) == 16
        and trace != _ZERO_TRACE
        and len(own) == 8
        and own != _ZERO_SPAN
        and (not parent or len(parent) == 8)
        and not span.links
    )


def validate_traces(message: Any, window: Window | None = None) -> Decoded:
    """Drop spans with invalid ids, no start time, or older than retention."""
    path = ("resource_spans", "scope_spans", "spans")
    oldest = window.oldest_ns if window is not None else 0
    accepted, rejected, errors = _prune(
        message, path, lambda span: "" if _span_fine(span, oldest) else _span_problem(span, window), _one
    )
    return Decoded("traces", message, accepted, rejected, _summary(errors, "spans"))


def _record_problem(record: Any, window: Window | None = None) -> str:
    for field, size in (("trace_id", 16), ("span_id", 8)):
        problem = _bad_id(getattr(record, field), size, False)
        if problem:
            return f"{field} {problem}"
    at = record.time_unix_nano or record.observed_time_unix_nano
    if window is not None and at and (old := window.too_old(at, "record time")):
        return old
    return ""


def validate_logs(message: Any, window: Window | None = None) -> Decoded:
    """Drop log records whose trace or span id has the wrong length, or older than retention."""
    path = ("resource_logs", "scope_logs", "log_records")
    accepted, rejected, errors = _prune(message, path, lambda record: _record_problem(record, window), _one)
    now, stamped = time.time_ns(), False
    for resource_logs in message.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                if not (record.time_unix_nano or record.observed_time_unix_nano):
                    record.observed_time_unix_nano, stamped = now, True
    decoded = Decoded("logs", message, accepted, rejected, _summary(errors, "log records"))
    decoded.rewritten = stamped
    return decoded


def _metric_problem(metric: Any, window: Window | None = None) -> str:
    kind = metric.WhichOneof("data")
    if window is not None and kind is not None:
        points = getattr(metric, kind).data_points
        if points and all(p.time_unix_nano and p.time_unix_nano < window.oldest_ns for p in points):
            return window.too_old(min(p.time_unix_nano for p in points), f"metric {metric.name!r}: every point, from")
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


def validate_metrics(message: Any, window: Window | None = None) -> Decoded:
    """Drop metrics with no name or no data, or whose every point is older than retention; count data points."""
    path = ("resource_metrics", "scope_metrics", "metrics")
    accepted, rejected, errors = _prune(message, path, lambda metric: _metric_problem(metric, window), _points)
    if window is not None and (old := _drop_old_points(message, window)):
        accepted, rejected = accepted - old, rejected + old
        errors.append(f"{old} data points older than the raw retention ({window.days}d) dropped from their metrics")
    return Decoded("metrics", message, accepted, rejected, _summary(errors, "data points"))


def _summary(errors: list[str], what: str) -> str:
    if not errors:
        return ""
    named = "; ".join(reversed(errors[-_MAX_ERRORS_NAMED:]))
    more = f" (and {len(errors) - _MAX_ERRORS_NAMED} more)" if len(errors) > _MAX_ERRORS_NAMED else ""
    return f"{len(errors)} invalid {what} rejected: {named}{more}"


def _drop_old_points(message: Any, window: Window) -> int:
    """Remove the data points older than retention from metrics that also have newer ones."""
    dropped = 0
    for resource_metrics in message.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind else []
                for j in range(len(points) - 1, -1, -1):
                    if points[j].time_unix_nano and points[j].time_unix_nano < window.oldest_ns:
                        del points[j]
                        dropped += 1
    return dropped


VALIDATORS: dict[str, Callable[[Any, Window | None], Decoded]] = {
    "traces": validate_traces,
    "logs": validate_logs,
    "metrics": validate_metrics,
}


def validate(signal: Signal, message: Any, retention_days: int | None = None) -> Decoded:
    """Validate a decoded request of the given signal in place; with `retention_days`, refuse what is older."""
    return VALIDATORS[signal](message, Window.of(retention_days) if retention_days else None)
