"""The technical gauges on /metrics (dependencies, queues) that exported Prometheus rules are written over."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from alerts import metrics
from collector import current_queue_states
from triage.metrics import publish
from triage.settings import Settings
from triage.store import Store

log = logging.getLogger("triage.alerts")

_SERVICE_CALLS = """
SELECT component, count(), countIf(err) FROM (
    SELECT (StatusCode = 'Error' OR toUInt16OrZero(SpanAttributes['http.response.status_code']) >= 500) AS err,
           arrayJoin(arrayDistinct(arrayFilter(x -> x != '', [ServiceName, SpanAttributes['peer.service'],
                     SpanAttributes['server.address']]))) AS component
    FROM otel_traces
    WHERE Timestamp >= {since:DateTime64(9)} AND SpanKind IN ('Server', 'Client', 'Consumer', 'Internal')
)
GROUP BY component
"""


def refresh(store: Store, settings: Settings, now: datetime) -> None:
    """Recompute the dependency and queue gauges from the store."""
    since = now - timedelta(seconds=settings.alerts.signal_window)
    calls: dict[tuple[str, ...], float] = {}
    ratio: dict[tuple[str, ...], float] = {}
    for component, n, errors in store.query(_SERVICE_CALLS, {"since": since}).result_rows:
        calls[(component,)] = float(n)
        ratio[(component,)] = float(errors) / max(float(n), 1.0)
    publish(metrics.DEPENDENCY_CALLS, calls)
    publish(metrics.DEPENDENCY_ERROR_RATIO, ratio)
    _queues(store, settings, now)


def _queues(store: Store, settings: Settings, now: datetime) -> None:
    status: dict[tuple[str, ...], float] = {}
    backlog: dict[tuple[str, ...], float] = {}
    for q in current_queue_states(store, settings, now):
        status[(q.name, q.status)] = 1.0
        if q.backlog is not None:
            backlog[(q.name,)] = float(q.backlog)
    publish(metrics.QUEUE_STATUS, status)
    publish(metrics.QUEUE_BACKLOG, backlog)
