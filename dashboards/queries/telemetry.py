"""Technical signals over a time range: queue backlog from queue_lag, service error rates from otel_traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dashboards.filters import bucket_seconds
from dashboards.queries.overview import hurt_rows
from triage.store import Store

QUEUE_SERIES = """
SELECT Queue, toStartOfInterval(Timestamp, toIntervalSecond({bucket:UInt32})) AS t,
       max(Backlog) AS backlog, max(OldestAgeSeconds) AS oldest_age
FROM queue_lag
WHERE Timestamp >= {since:DateTime64(3)} AND Error = ''
GROUP BY Queue, t
ORDER BY Queue, t
LIMIT 20000
"""
# Per service: calls and errors per time bucket, from the per-minute aggregates of migration 0017 (every
# bucket is whole minutes, so a window starts at the minute `since` falls in). grouping(t) = 1 marks the
# whole-window row, which also carries p95 latency and the last error text when `latency` is asked for.
SERVICE_SERIES = """
SELECT ServiceName, toStartOfInterval(Minute, toIntervalSecond({bucket:UInt32})) AS t,
       sum(Calls) AS calls, sum(Errors) AS errors
FROM otel_traces_service_minutes
WHERE Minute >= toStartOfMinute({since:DateTime64(9)})
GROUP BY ServiceName, t
ORDER BY ServiceName, t
LIMIT 50000
"""
SERVICE_LATENCY = """
SELECT ServiceName, toStartOfInterval(Minute, toIntervalSecond({bucket:UInt32})) AS t,
       sum(Calls) AS calls, sum(Errors) AS errors,
       if(grouping(t) = 1, quantileTDigestMerge(0.95)(Duration) / 1e9, 0) AS p95_seconds,
       if(grouping(t) = 1, argMaxIfMerge(LastError), '') AS last_error,
       grouping(t) AS whole
FROM otel_traces_service_minutes
WHERE Minute >= toStartOfMinute({since:DateTime64(9)})
GROUP BY GROUPING SETS ((ServiceName, t), (ServiceName))
ORDER BY ServiceName, whole, t
LIMIT 50000
"""
# Outside systems are often seen only in their callers' client spans (peer.service); this looks back
# at most PEER_WINDOW.
PEERS = """
SELECT Peer AS peer, sum(Calls) AS calls, sum(Errors) AS errors, argMaxIfMerge(LastError) AS last_error
FROM otel_traces_peer_minutes
WHERE Minute >= toStartOfMinute({since:DateTime64(9)})
GROUP BY peer
ORDER BY errors DESC
LIMIT 200
"""
PEER_WINDOW = 6 * 3600


@dataclass
class Series:
    """One named time series (oldest first)."""

    name: str
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    extra: list[float | None] = field(default_factory=list)


@dataclass
class ServiceHealth:
    """A service (or a called peer) over the window: its own spans, and what its callers saw."""

    name: str
    calls: int = 0
    errors: int = 0
    p95_seconds: float | None = None
    last_error: str = ""
    series: Series | None = None
    caller_calls: int = 0
    caller_errors: int = 0
    caller_last_error: str = ""

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def caller_error_rate(self) -> float:
        return self.caller_errors / self.caller_calls if self.caller_calls else 0.0

    @property
    def worst_rate(self) -> float:
        return max(self.error_rate, self.caller_error_rate)


@dataclass(frozen=True)
class Hurt:
    component: str
    kind: str
    workflow: str
    count: int
    value: float
    critical: int


def queue_series(store: Store, since: datetime, window_seconds: int) -> dict[str, Series]:
    """Backlog (values) and oldest message age (extra) per queue, bucketed over the window."""
    params = {"since": since, "bucket": bucket_seconds(window_seconds)}
    out: dict[str, Series] = {}
    for queue, t, backlog, oldest in store.query(QUEUE_SERIES, params).result_rows:
        series = out.setdefault(queue, Series(queue))
        series.times.append(t)
        series.values.append(float(backlog or 0))
        series.extra.append(oldest)
    return out


def service_health(store: Store, since: datetime, window_seconds: int, *, latency: bool = False) -> list[ServiceHealth]:
    """Every service's calls, errors and error-rate series over the window, merged with what callers saw
    of it (and of peers that send no spans themselves); with `latency`, also p95 and the last error."""
    params = {"since": since, "bucket": bucket_seconds(window_seconds)}
    out: dict[str, ServiceHealth] = {}
    if latency:
        for name, t, calls, errors, p95, last_error, whole in store.query(SERVICE_LATENCY, params).result_rows:
            health = out.setdefault(name, ServiceHealth(name, series=Series(name)))
            if whole:
                health.calls, health.errors, health.p95_seconds, health.last_error = calls, errors, p95, last_error
            else:
                _append(health, t, calls, errors)
    else:
        for name, t, calls, errors in store.query(SERVICE_SERIES, params).result_rows:
            health = out.setdefault(name, ServiceHealth(name, series=Series(name)))
            health.calls += calls
            health.errors += errors
            _append(health, t, calls, errors)
    peer_since = max(since, datetime.now(UTC) - timedelta(seconds=PEER_WINDOW))
    for peer, calls, errors, last_error in store.query(PEERS, {"since": peer_since}).result_rows:
        health = out.setdefault(peer, ServiceHealth(peer))
        health.caller_calls, health.caller_errors, health.caller_last_error = calls, errors, last_error
    return sorted(out.values(), key=lambda h: (-h.worst_rate, -h.calls, h.name))


def _append(health: ServiceHealth, t: datetime, calls: int, errors: int) -> None:
    assert health.series is not None
    health.series.times.append(t)
    health.series.values.append(errors / calls if calls else 0.0)
    health.series.extra.append(float(calls))


def hurt_workflows(store: Store) -> list[Hurt]:
    """Stuck transactions by the component their cause names, per workflow (from the snapshot of 0017)."""
    return [Hurt(*r) for r in hurt_rows(store)]
