"""Alerts for the alerts page, from the alerts part's tables (triage/store/migrations/0010_alerts.sql):
current instances in `alert_state` (FINAL), their history in `alert_events`, silences in
`alert_silences` (FINAL). A store migrated before those tables existed gets an explanatory empty state,
so the page checks for them first. All alert SQL of the dashboards lives here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage.store import Store

TABLES = ("alert_state", "alert_events", "alert_silences")
EXISTING = """
SELECT name FROM system.tables
WHERE database = currentDatabase() AND name IN {names:Array(String)}
"""
# Firing first, then pending, then what resolved lately.
CURRENT = """
SELECT Rule, Status, Severity, Labels, Annotations, ActiveSince, FiredAt, ResolvedAt, UpdatedAt, Count, Value, Keys
FROM alert_state FINAL
WHERE Status IN ('firing', 'pending') OR (Status = 'resolved' AND UpdatedAt >= {since:DateTime64(3)})
ORDER BY indexOf(['firing', 'pending', 'resolved'], Status), Value DESC, UpdatedAt DESC
LIMIT {limit:UInt32}
"""
HISTORY = """
SELECT At, Rule, Kind, Channel, Detail, Labels
FROM alert_events
WHERE At >= {since:DateTime64(3)}
ORDER BY At DESC
LIMIT {limit:UInt32}
"""
SILENCES = """
SELECT Id, Matchers, StartsAt, EndsAt, CreatedBy, Comment
FROM alert_silences FINAL
WHERE EndsAt >= {since:DateTime64(3)}
ORDER BY EndsAt DESC
LIMIT {limit:UInt32}
"""


@dataclass(frozen=True)
class AlertInstance:
    rule: str
    status: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    active_since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    count: int
    value: float
    keys: list[str]


@dataclass(frozen=True)
class AlertEvent:
    at: datetime
    rule: str
    kind: str
    channel: str
    detail: str
    labels: dict[str, str]


@dataclass(frozen=True)
class SilenceRow:
    id: str
    matchers: list[dict[str, Any]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


@dataclass
class AlertsView:
    """What the alerts page shows; `missing` names the alert tables this store does not have yet."""

    missing: list[str] = field(default_factory=list)
    current: list[AlertInstance] = field(default_factory=list)
    history: list[AlertEvent] = field(default_factory=list)
    silences: list[SilenceRow] = field(default_factory=list)


def _matchers(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return [{"name": "?", "value": text}]
    return value if isinstance(value, list) else [value]


def alerts_view(store: Store, since: datetime, limit: int = 200) -> AlertsView:
    """Current and recently resolved alerts, the history since `since`, and silences not expired before it."""
    existing = {r[0] for r in store.query(EXISTING, {"names": list(TABLES)}).result_rows}
    view = AlertsView(missing=[t for t in TABLES if t not in existing])
    params = {"since": since, "limit": limit}
    if "alert_state" in existing:
        view.current = [
            AlertInstance(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], int(r[9]), float(r[10]), list(r[11]))
            for r in store.query(CURRENT, params).result_rows
        ]
    if "alert_events" in existing:
        view.history = [AlertEvent(*r) for r in store.query(HISTORY, params).result_rows]
    if "alert_silences" in existing:
        view.silences = [
            SilenceRow(r[0], _matchers(r[1]), r[2], r[3], r[4], r[5]) for r in store.query(SILENCES, params).result_rows
        ]
    return view
