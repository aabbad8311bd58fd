"""Alert state in the store (`alert_state`, `alert_events`) and the pending → firing → resolved transitions.

One evaluator writes per store. Every change is a new row version, so the latest state survives a
restart: pending alerts keep their `for:` clock, firing ones keep their start and are not paged again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.alert import ACTIVE, FIRING, INACTIVE, PENDING, RESOLVED, Alert, AlertEvent, Match, fingerprint
from alerts.language import AlertRule
from alerts.templates import annotate
from triage.settings import Settings
from triage.store import Store

STATE_COLUMNS = [
    "Fingerprint",
    "Rule",
    "Status",
    "Severity",
    "Labels",
    "Annotations",
    "ActiveSince",
    "FiredAt",
    "ResolvedAt",
    "UpdatedAt",
    "Count",
    "Value",
    "Keys",
    "AmResolvedSent",
    "Version",
]
EVENT_COLUMNS = ["At", "Fingerprint", "Rule", "Kind", "Channel", "DeliveryId", "Detail", "Labels"]
_SELECT = f"SELECT {', '.join(STATE_COLUMNS[:-1])} FROM alert_state FINAL"
_LIVE = (
    _SELECT + " WHERE Status IN ('pending', 'firing') OR (Status = 'resolved' AND UpdatedAt >= {since:DateTime64(3)})"
)
# Firing first, then pending, then what resolved lately; the largest value first within each.
_RECENT = (
    _LIVE + " ORDER BY indexOf(['firing', 'pending', 'resolved'], Status), Value DESC, UpdatedAt DESC"
    " LIMIT {limit:UInt32}"
)
_LIST = (
    _SELECT + " WHERE has({statuses:Array(String)}, Status)"
    " AND ({rule:String} = '' OR Rule = {rule:String}) ORDER BY UpdatedAt DESC LIMIT {limit:UInt32}"
)
_ONE = _SELECT + " WHERE Fingerprint = {fingerprint:String}"
_EVENTS = """
SELECT At, Fingerprint, Rule, Kind, Channel, DeliveryId, Detail, Labels FROM alert_events
WHERE ({fingerprint:String} = '' OR Fingerprint = {fingerprint:String}) AND At >= {since:DateTime64(3)}
ORDER BY At DESC LIMIT {limit:UInt32}
"""
_DONE_DELIVERIES = """
SELECT DeliveryId, any(Kind) FROM alert_events
WHERE Kind IN ('delivered', 'dead_letter') AND At >= {since:DateTime64(3)}
GROUP BY DeliveryId
"""
# Resolved alerts stay in memory this long to finish their resolve notifications.
RESOLVED_KEEP = timedelta(hours=1)


def _alert(r: Any) -> Alert:
    return Alert(
        fingerprint=r[0],
        rule=r[1],
        status=r[2],
        severity=r[3],
        labels=dict(r[4]),
        annotations=dict(r[5]),
        active_since=r[6],
        fired_at=r[7],
        resolved_at=r[8],
        updated_at=r[9],
        count=int(r[10]),
        value=float(r[11]),
        keys=list(r[12]),
        am_resolved_sent=bool(r[13]),
    )


def load_live(store: Store, now: datetime) -> dict[str, Alert]:
    """Pending and firing alerts, and those resolved within the last hour (notifications may be due)."""
    rows = store.query(_LIVE, {"since": now - RESOLVED_KEEP}).result_rows
    return {a.fingerprint: a for a in map(_alert, rows)}


def list_alerts(store: Store, statuses: Iterable[str], rule: str = "", limit: int = 1000) -> list[Alert]:
    params = {"statuses": list(statuses), "rule": rule, "limit": limit}
    return [_alert(r) for r in store.query(_LIST, params).result_rows]


def get_alert(store: Store, fp: str) -> Alert | None:
    row = store.query(_ONE, {"fingerprint": fp}).first_row
    return _alert(row) if row else None


def recent_alerts(store: Store, since: datetime, limit: int = 200) -> list[Alert]:
    """Firing, then pending alerts, then those resolved since `since`."""
    return [_alert(r) for r in store.query(_RECENT, {"since": since, "limit": limit}).result_rows]


def alert_events(
    store: Store, fp: str = "", limit: int = 200, since: datetime = datetime(1970, 1, 1)
) -> list[AlertEvent]:
    """What happened to alerts (one alert's with `fp`), newest first."""
    rows = store.query(_EVENTS, {"fingerprint": fp, "limit": limit, "since": since}).result_rows
    return [AlertEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], dict(r[7])) for r in rows]


def done_deliveries(store: Store, now: datetime) -> dict[str, str]:
    """Delivery ids already delivered or dead-lettered (never sent again), with which of the two."""
    rows = store.query(_DONE_DELIVERIES, {"since": now - timedelta(days=30)}).result_rows
    return {r[0]: r[1] for r in rows}


def save(store: Store, alerts: Iterable[Alert]) -> None:
    version = time.time_ns()
    rows = [
        [
            a.fingerprint,
            a.rule,
            a.status,
            a.severity,
            a.labels,
            a.annotations,
            a.active_since,
            a.fired_at,
            a.resolved_at,
            a.updated_at,
            a.count,
            a.value,
            a.keys,
            int(a.am_resolved_sent),
            version + i,
        ]
        for i, a in enumerate(alerts)
    ]
    if rows:
        store.insert("alert_state", rows, STATE_COLUMNS)


def record(store: Store, events: list[list[Any]]) -> None:
    if events:
        store.insert("alert_events", events, EVENT_COLUMNS)


def event(
    at: datetime, alert: Alert, kind: str, channel: str = "", delivery_id: str = "", detail: str = ""
) -> list[Any]:
    return [at, alert.fingerprint, alert.rule, kind, channel, delivery_id, detail, alert.labels]


@dataclass
class Transition:
    """What one evaluation changed: alerts to persist and events to record."""

    changed: list[Alert] = field(default_factory=list)
    events: list[list[Any]] = field(default_factory=list)


def advance(
    live: dict[str, Alert],
    matches: dict[str, tuple[AlertRule, Match]],
    failed_rules: set[str],
    settings: Settings,
    now: datetime,
) -> Transition:
    """Move every alert one step: new matches become pending, pending ones fire after `for:`,
    firing ones whose group no longer matches resolve. Alerts of a rule whose evaluation failed
    keep their state (a store hiccup must not resolve anything)."""
    out = Transition()
    for fp, (rule, match) in matches.items():
        notes = annotate(rule, match, settings)
        alert = live.get(fp)
        if alert is None or alert.status not in ACTIVE:
            alert = Alert(fp, rule.name, PENDING, rule.severity, labels_of(rule, match), notes, now, now)
            live[fp] = alert
            out.events.append(event(now, alert, PENDING))
        moved = (match.count, round(match.value, 2)) != (alert.count, round(alert.value, 2))
        changed = alert.updated_at == now or moved
        alert.annotations, alert.count, alert.value, alert.keys = notes, match.count, match.value, match.keys
        if alert.status == PENDING and (now - alert.active_since).total_seconds() >= rule.for_:
            alert.status, alert.fired_at, changed = FIRING, now, True
            out.events.append(event(now, alert, FIRING, detail=notes["summary"]))
        if changed:
            alert.updated_at = now
            out.changed.append(alert)
    for fp, alert in list(live.items()):
        if fp in matches or alert.rule in failed_rules or alert.status not in ACTIVE:
            continue
        if alert.status == FIRING:
            alert.status, alert.resolved_at = RESOLVED, now
            out.events.append(event(now, alert, RESOLVED))
        else:
            alert.status = INACTIVE
            out.events.append(event(now, alert, "cleared"))
            del live[fp]
        alert.updated_at = now
        out.changed.append(alert)
    for fp, alert in list(live.items()):
        if alert.status == RESOLVED and alert.resolved_at and now - alert.resolved_at > RESOLVED_KEEP:
            del live[fp]
    return out


def labels_of(rule: AlertRule, match: Match) -> dict[str, str]:
    """The labels Alertmanager sees: alertname, severity, the group's business labels, the rule's labels."""
    return {"alertname": rule.name, "severity": rule.severity, **match.labels, **rule.labels}


def match_key(rule: AlertRule, match: Match) -> str:
    return fingerprint(labels_of(rule, match))
