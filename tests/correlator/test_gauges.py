"""The business gauges on /metrics follow the store after a cycle, at most every `correlation.gauges_every`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from correlator import Correlator
from triage.settings import Settings, load_settings
from triage.store import Store

WORKFLOW: dict[str, Any] = {
    "name": "gauge_flow",
    "keys": ["erp.po_number"],
    "steps": [
        {"name": "requisition", "match": {"span_name": "POST /requisitions"}},
        {"name": "approval", "match": {"service": "approval-saas"}, "sla": {"normal": "1h"}},
    ],
    "terminal": ["approval"],
}
_COLUMNS = ["Workflow", "Key", "EventId", "Step", "At", "Source", "Service", "SpanKind", "Status", "Failure"]
_keys = itertools.count(7700000000)


def settings(store: Store, gauges_every: float) -> Settings:
    values = {"store": store.dsn, "workflows": [WORKFLOW], "correlation": {"gauges_every": gauges_every}}
    return load_settings(None, values, environ={})


def begin(store: Store, now: datetime) -> None:
    """A transaction that has reached its requisition and waits for approval."""
    key = str(next(_keys))
    row = ["gauge_flow", key, f"{key}-0", "requisition", now - timedelta(minutes=5), "span", "erp", "Server", "ok", 0]
    store.insert("business_events", [row], _COLUMNS)


def in_progress() -> float | None:
    labels = {"workflow": "gauge_flow", "state": "in_progress", "criticality": "normal"}
    return REGISTRY.get_sample_value("triage_transactions", labels)


def test_gauges_are_recomputed_at_most_every_gauges_every(store: Store) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(days=1)
    begin(store, now)
    throttled = Correlator(store, settings(store, 3600), scratch="gauges")
    throttled.replay(since, now, now)
    assert in_progress() == 1  # the first cycle always recomputes them

    begin(store, now)
    throttled.replay(since, now, now)
    assert in_progress() == 1  # an hour has not passed: the second cycle left them as they were

    every = Correlator(store, settings(store, 0), scratch="gauges")
    every.replay(since, now, now)
    assert in_progress() == 2
    begin(store, now)
    every.replay(since, now, now)
    assert in_progress() == 3  # 0: after every cycle
