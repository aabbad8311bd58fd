"""What a rule's `when:` selects right now, as groups (`Match`): transactions, queues or dependencies."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from alerts.alert import Match
from alerts.templates import CAP, age, money, one_or_count, overview_path, transaction_path, when
from correlator import dependency_health
from triage.durations import format_duration
from triage.settings import AlertRule, Settings
from triage.store import Store

log = logging.getLogger("triage.alerts")
STUCK = ["stalled", "blocked", "failed"]
MAX_GROUPS = 1000  # alerts one rule may raise per cycle; the largest by value first
# group_by label → business_transactions column (our own constants, never user text).
TX_COLUMNS = {
    "workflow": "Workflow",
    "key": "Key",
    "state": "State",
    "facility": "Facility",
    "criticality": "Criticality",
    "cause_kind": "CauseKind",
    "cause_component": "CauseComponent",
    "step": "CurrentStep",
}
_TX_FILTERED = """
FROM business_transactions FINAL
WHERE has({states:Array(String)}, State)
  AND (empty({workflows:Array(String)}) OR has({workflows:Array(String)}, Workflow))
  AND (empty({criticalities:Array(String)}) OR has({criticalities:Array(String)}, Criticality))
  AND (empty({facilities:Array(String)}) OR has({facilities:Array(String)}, Facility))
  AND (empty({cause_kinds:Array(String)}) OR has({cause_kinds:Array(String)}, CauseKind))
  AND (empty({components:Array(String)}) OR has({components:Array(String)}, CauseComponent))
  AND (empty({steps:Array(String)}) OR has({steps:Array(String)}, CurrentStep))
  AND coalesce(CauseSince, UpdatedAt) <= {aged_before:DateTime64(9)}
  AND ({overdue_check:UInt8} = 0 OR (DueAt IS NOT NULL AND DueAt <= {due_before:DateTime64(9)}))
  AND Value >= {min_value:Float64}
"""
_TX_AGGREGATES = f"""
count() AS n, sum(Value) AS value, min(coalesce(CauseSince, UpdatedAt)) AS since,
groupUniqArray({CAP})(Workflow), groupUniqArray({CAP})(State), groupUniqArray({CAP})(Facility),
groupUniqArray({CAP})(FacilityName), groupUniqArray({CAP})(Criticality), groupUniqArray({CAP})(CauseKind),
groupUniqArray({CAP})(CauseComponent), groupUniqArray({CAP})(CurrentStep),
topKIf(1)(tuple(CauseKind, CauseComponent, CauseDetail), CauseKind != '') AS top_cause,
groupArraySorted(5)((-Priority, Workflow, Key, FacilityName, Criticality, Value, State, CurrentStep, CauseDetail))
"""
_STUCK_ON = """
SELECT CauseComponent, count(), sum(Value), groupUniqArray(6)(Workflow)
FROM business_transactions FINAL
WHERE State IN ('stalled', 'blocked', 'failed') AND has({components:Array(String)}, CauseComponent)
GROUP BY CauseComponent
"""


def evaluate(rule: AlertRule, store: Store, settings: Settings, now: datetime) -> list[Match]:
    """The groups that satisfy `rule` at `now`."""
    if rule.kind == "queues":
        return queue_matches(rule, store, settings, now)
    if rule.kind == "dependencies":
        return dependency_matches(rule, store, settings, now)
    return transaction_matches(rule, store, settings, now)


def next_period_close(settings: Settings, now: datetime, within: float) -> date | None:
    """The period close (correlation.period_close) at most `within` away, or today's."""
    for day in sorted(date.fromisoformat(d) for d in settings.correlation.period_close):
        start = datetime.combine(day, time(0), tzinfo=UTC)
        if start + timedelta(days=1) > now and (start - now).total_seconds() <= within:
            return day
    return None


def transaction_matches(rule: AlertRule, store: Store, settings: Settings, now: datetime) -> list[Match]:
    w = rule.when
    close: date | None = None
    if w.period_close_within is not None:
        close = next_period_close(settings, now, w.period_close_within)
        if close is None:
            return []
    groups = rule.grouping
    select = "".join(f"{TX_COLUMNS[g]} AS g_{g}, " for g in groups)
    group_by = f"GROUP BY {', '.join(TX_COLUMNS[g] for g in groups)}" if groups else ""
    sql = (
        f"SELECT {select}{_TX_AGGREGATES} {_TX_FILTERED} {group_by} "
        "HAVING n > {count_over:UInt64} AND value > {value_over:Float64} ORDER BY value DESC, n DESC "
        f"LIMIT {MAX_GROUPS}"
    )
    params: dict[str, Any] = {
        "states": list(w.state or STUCK),
        "workflows": w.workflow or [],
        "criticalities": list(w.criticality or []),
        "facilities": w.facility or [],
        "cause_kinds": list(w.cause_kind or []),
        "components": w.cause_component or [],
        "steps": w.step or [],
        "aged_before": now - timedelta(seconds=w.min_age or 0),
        "overdue_check": int(w.overdue is not None),
        "due_before": now - timedelta(seconds=w.overdue or 0),
        "min_value": w.min_value or 0.0,
        "count_over": w.count_over or 0,
        "value_over": w.value_at_risk_over if w.value_at_risk_over is not None else -1.0,
    }
    rows = store.query(sql, params).result_rows
    if len(rows) >= MAX_GROUPS:
        log.warning("event=alert_groups_truncated rule=%s groups=%d hint='group_by fewer labels'", rule.name, len(rows))
    return [_transaction_match(rule, groups, row, now, close) for row in rows]


def _transaction_match(
    rule: AlertRule, groups: list[str], row: Sequence[Any], now: datetime, close: date | None
) -> Match:
    grouped = dict(zip(groups, (str(v) for v in row[: len(groups)]), strict=True))
    (n, value, since, workflows, states, facilities, names, crits, kinds, components, steps, top, sample) = row[
        len(groups) :
    ]
    labels = {**rule.when.pinned(), **{k: v for k, v in grouped.items() if v}}
    cause = top[0] if top else None
    facility_names = [str(x) for x in names]
    context = {
        "workflow": one_or_count("workflow", list(workflows)),
        "state": states[0] if len(states) == 1 else "stuck",
        "facility": one_or_count("facility", list(facilities)),
        "facility_name": one_or_count("facility_name", facility_names),
        "criticality": one_or_count("criticality", list(crits)),
        "cause_kind": one_or_count("cause_kind", [k for k in kinds if k]),
        "cause_component": one_or_count("cause_component", [c for c in components if c]),
        "cause_detail": cause[2] if cause else "",
        "top_cause": f"{cause[0]} on {cause[1]}" if cause else "no cause named",
        "step": one_or_count("step", list(steps)),
        "key": grouped.get("key") or (sample[0][2] if len(sample) == 1 else f"{n} transactions"),
        "keys": "; ".join(_line(s) for s in sample),
        "since": when(since),
        "age": age(since, now),
        "period_close": close.isoformat() if close else "",
        "period_close_in": _until(close, now),
    }
    keys = [f"{s[1]}/{s[2]}" for s in sample]
    if n == 1 and sample:
        path = transaction_path(sample[0][1], sample[0][2])
    else:
        path = overview_path({k: v for k, v in labels.items() if k in ("workflow", "facility", "state", "cause_kind")})
    return Match(labels, int(n), float(value), context, keys, path)


def _line(s: Sequence[Any]) -> str:
    """One transaction of a group, as on-call reads it."""
    _, workflow, key, facility, criticality, value, state, step, detail = s
    at = f" at {step}" if step else ""
    why = f": {detail}" if detail else ""
    return f"{workflow} {key} ({facility or 'no facility'}, {criticality}, {money(value)}) {state}{at}{why}"


def _until(close: date | None, now: datetime) -> str:
    if close is None:
        return ""
    seconds = (datetime.combine(close, time(0), tzinfo=UTC) - now).total_seconds()
    return "today" if seconds <= 0 else f"in {format_duration(seconds)}"


def stuck_on(store: Store, components: list[str]) -> dict[str, tuple[int, float, list[str]]]:
    """Stuck transactions waiting on each component: count, value, workflows."""
    if not components:
        return {}
    rows = store.query(_STUCK_ON, {"components": components}).result_rows
    return {r[0]: (int(r[1]), float(r[2]), sorted(r[3])) for r in rows}


def queue_matches(rule: AlertRule, store: Store, settings: Settings, now: datetime) -> list[Match]:
    from collector.queues import current_queue_states

    w = rule.when
    states = [
        s
        for s in current_queue_states(store, settings, now)
        if (w.queue_status is None or s.status in w.queue_status)
        and (w.queue is None or s.name in w.queue or (s.destination and s.destination in w.queue))
        and (w.min_backlog is None or (s.backlog or 0) >= w.min_backlog)
    ]
    waiting = stuck_on(store, sorted({n for s in states for n in (s.name, s.destination) if n}))
    groups: dict[tuple[str, ...], list[Any]] = {}
    for s in states:
        values = {"queue": s.name, "system": s.system, "queue_status": s.status}
        groups.setdefault(tuple(values[g] for g in rule.grouping), []).append(s)
    matches = []
    for key, members in groups.items():
        grouped = dict(zip(rule.grouping, key, strict=True))
        names = sorted({n for s in members for n in (s.name, s.destination) if n})
        count = sum(waiting.get(n, (0, 0.0, []))[0] for n in names)
        value = sum(waiting.get(n, (0, 0.0, []))[1] for n in names)
        workflows = sorted({wf for n in names for wf in waiting.get(n, (0, 0.0, []))[2]})
        queue = one_or_count("queue", [s.name for s in members])
        labels = {**w.pinned(), **grouped, "cause_kind": "queue_backlog"}
        if len(members) == 1:
            labels["cause_component"] = members[0].name
        oldest = max((s.oldest_age_seconds or 0.0 for s in members), default=0.0)
        context = {
            "queue": queue,
            "queue_status": one_or_count("queue_status", [s.status for s in members]),
            "system": one_or_count("system", [s.system for s in members]),
            "backlog": f"{sum(s.backlog or 0 for s in members):,}",
            "consumers": str(sum(s.consumers or 0 for s in members)),
            "oldest_age": format_duration(oldest) if oldest else "unknown",
            "detail": "; ".join(f"{s.name}: {s.detail}" for s in members if s.detail),
            "workflow": one_or_count("workflow", workflows),
            "cause_kind": "queue_backlog",
            "cause_component": queue,
            "since": when(min((s.sampled_at for s in members if s.sampled_at), default=None)),
            "age": format_duration(oldest) if oldest else "unknown",
        }
        path = overview_path({"cause_kind": "queue_backlog", "cause_component": labels.get("cause_component", "")})
        matches.append(Match(labels, count, value, context, [], path))
    return matches


def dependency_matches(rule: AlertRule, store: Store, settings: Settings, now: datetime) -> list[Match]:
    w = rule.when
    window = w.window or settings.alerts.signal_window
    rate, min_calls = w.error_rate_over or 0.0, w.min_calls or 5
    health = dependency_health(store, now - timedelta(seconds=window), now, w.service or [])
    failing = [
        (name, h.calls, h.errors, h.first_error, h.last_detail)
        for name, h in sorted(health.items())
        if h.calls >= min_calls and h.errors / h.calls > rate
    ]
    waiting = stuck_on(store, [r[0] for r in failing])
    groups: dict[tuple[str, ...], list[Sequence[Any]]] = {}
    for r in failing:
        groups.setdefault(tuple(r[0] for _ in rule.grouping), []).append(r)
    matches = []
    for key, members in groups.items():
        services = [m[0] for m in members]
        calls, errors = sum(int(m[1]) for m in members), sum(int(m[2]) for m in members)
        first = min((m[3] for m in members), default=None)
        count = sum(waiting.get(s, (0, 0.0, []))[0] for s in services)
        value = sum(waiting.get(s, (0, 0.0, []))[1] for s in services)
        workflows = sorted({wf for s in services for wf in waiting.get(s, (0, 0.0, []))[2]})
        labels = {**w.pinned(), **dict(zip(rule.grouping, key, strict=True)), "cause_kind": "dependency_error"}
        if len(services) == 1:
            labels["cause_component"] = services[0]
        service = one_or_count("service", services)
        context = {
            "service": service,
            "error_rate": f"{100 * errors / max(calls, 1):.0f}%",
            "errors": f"{errors:,}",
            "calls": f"{calls:,}",
            "detail": "; ".join(sorted({str(m[4]) for m in members if m[4]})) or "errors",
            "workflow": one_or_count("workflow", workflows),
            "cause_kind": "dependency_error",
            "cause_component": service,
            "since": when(first),
            "age": age(first, now),
        }
        path = overview_path({"cause_kind": "dependency_error", "cause_component": labels.get("cause_component", "")})
        matches.append(Match(labels, count, value, context, [], path))
    return matches
