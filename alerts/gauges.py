"""The business and technical gauges on /metrics that exported Prometheus rules are written over."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from alerts import metrics
from alerts.signals import STUCK
from triage.settings import Settings
from triage.store import Store

log = logging.getLogger("triage.alerts")

_STUCK_GROUPS = """
SELECT Workflow, State, Facility, any(FacilityName), Criticality, CauseKind, CauseComponent, count(), sum(Value),
       dateDiff('millisecond', min(coalesce(CauseSince, UpdatedAt)), {now:DateTime64(3)}) / 1000
FROM business_transactions FINAL
WHERE has({states:Array(String)}, State)
GROUP BY Workflow, State, Facility, Criticality, CauseKind, CauseComponent
"""
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
    """Recompute every gauge from the store; a failing source leaves its gauges as they were."""
    counts: dict[tuple[str, ...], float] = {}
    values: dict[tuple[str, ...], float] = {}
    oldest: dict[tuple[str, ...], float] = {}
    for r in store.query(_STUCK_GROUPS, {"now": now, "states": STUCK}).result_rows:
        labels = tuple(str(x) for x in r[:7])
        counts[labels], values[labels], oldest[labels] = float(r[7]), float(r[8]), max(0.0, float(r[9]))
    metrics.publish(metrics.STUCK, counts)
    metrics.publish(metrics.STUCK_VALUE, values)
    metrics.publish(metrics.STUCK_OLDEST, oldest)
    since = now - timedelta(seconds=settings.alerts.signal_window)
    calls: dict[tuple[str, ...], float] = {}
    ratio: dict[tuple[str, ...], float] = {}
    for component, n, errors in store.query(_SERVICE_CALLS, {"since": since}).result_rows:
        calls[(component,)] = float(n)
        ratio[(component,)] = float(errors) / max(float(n), 1.0)
    metrics.publish(metrics.DEPENDENCY_CALLS, calls)
    metrics.publish(metrics.DEPENDENCY_ERROR_RATIO, ratio)
    _queues(store, settings, now)


def _queues(store: Store, settings: Settings, now: datetime) -> None:
    from collector.queues import current_queue_states

    status: dict[tuple[str, ...], float] = {}
    backlog: dict[tuple[str, ...], float] = {}
    for q in current_queue_states(store, settings, now):
        status[(q.name, q.status)] = 1.0
        if q.backlog is not None:
            backlog[(q.name,)] = float(q.backlog)
    metrics.publish(metrics.QUEUE_STATUS, status)
    metrics.publish(metrics.QUEUE_BACKLOG, backlog)
