"""Alerts for the alerts page, read through the alerts part: current instances, their history, silences.
A store migrated before the alert tables existed gets an explanatory empty state, so the page checks
for them first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from alerts import Alert, AlertEvent, Silence, alert_events, list_silences, recent_alerts
from triage.store import Store

TABLES = ("alert_state", "alert_events", "alert_silences")
EXISTING = """
SELECT name FROM system.tables
WHERE database = currentDatabase() AND name IN {names:Array(String)}
"""


@dataclass
class AlertsView:
    """What the alerts page shows; `missing` names the alert tables this store does not have yet."""

    missing: list[str] = field(default_factory=list)
    current: list[Alert] = field(default_factory=list)
    history: list[AlertEvent] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)


def alerts_view(store: Store, since: datetime, limit: int = 200) -> AlertsView:
    """Current and recently resolved alerts, the history since `since`, and silences not expired before it."""
    existing = {r[0] for r in store.query(EXISTING, {"names": list(TABLES)}).result_rows}
    view = AlertsView(missing=[t for t in TABLES if t not in existing])
    if "alert_state" in existing:
        view.current = recent_alerts(store, since, limit)
    if "alert_events" in existing:
        view.history = alert_events(store, limit=limit, since=since)
    if "alert_silences" in existing:
        recent = [s for s in list_silences(store) if s.ends_at >= since]
        view.silences = sorted(recent, key=lambda s: s.ends_at, reverse=True)[:limit]
    return view
