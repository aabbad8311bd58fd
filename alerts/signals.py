"""What a rule's `when:` selects right now, as groups (`Match`): transactions, queues or dependencies."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from alerts.alert import Match
from alerts.language import AlertRule
from alerts.templates import CAP, age, money, one_or_count, overview_path, transaction_path, when
from collector import current_queue_states
from correlator import (
    SampleTransaction,
    Selection,
    StuckComponent,
    TransactionGroup,
    dependency_health,
    group_transactions,
    stuck_by_component,
)
from triage.durations import format_duration
from triage.settings import Settings
from triage.store import Store
from triage.vocabulary import STUCK, CauseKind, State

log = logging.getLogger("triage.alerts")
MAX_GROUPS = 1000  # alerts one rule may raise per cycle; the largest by value first


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
    selection = Selection(
        # A transaction at risk is one still in progress: that is what `at_risk` selects unless `state` says.
        states=tuple(w.state or ((State.IN_PROGRESS,) if w.at_risk else STUCK)),
        workflows=tuple(w.workflow or ()),
        criticalities=tuple(w.criticality or ()),
        facilities=tuple(w.facility or ()),
        cause_kinds=tuple(w.cause_kind or ()),
        components=tuple(w.cause_component or ()),
        steps=tuple(w.step or ()),
        aged_before=now - timedelta(seconds=w.min_age or 0),
        due_before=now - timedelta(seconds=w.overdue) if w.overdue is not None else None,
        min_value=w.min_value or 0.0,
        at_risk=w.at_risk,
        now=now,
    )
    found = group_transactions(
        store,
        selection,
        groups,
        count_over=w.count_over or 0,
        value_over=w.value_at_risk_over if w.value_at_risk_over is not None else -1.0,
        cap=CAP,
        limit=MAX_GROUPS,
    )
    if len(found) >= MAX_GROUPS:
        log.warning(
            "event=alert_groups_truncated rule=%s groups=%d hint='group_by fewer labels'", rule.name, len(found)
        )
    return [_transaction_match(rule, g, now, close) for g in found]


def _transaction_match(rule: AlertRule, g: TransactionGroup, now: datetime, close: date | None) -> Match:
    labels = {**rule.when.pinned(), **{k: v for k, v in g.labels.items() if v}}
    cause, sample = g.top_cause, g.sample
    context = {
        "workflow": one_or_count("workflow", g.workflows),
        "state": g.states[0] if len(g.states) == 1 else "stuck",
        "facility": one_or_count("facility", g.facilities),
        "facility_name": one_or_count("facility_name", g.facility_names),
        "criticality": one_or_count("criticality", g.criticalities),
        "cause_kind": one_or_count("cause_kind", [k for k in g.cause_kinds if k]),
        "cause_component": one_or_count("cause_component", [c for c in g.components if c]),
        "cause_detail": cause.detail if cause else "",
        "top_cause": f"{cause.kind} on {cause.component}" if cause else "no cause named",
        "step": one_or_count("step", g.steps),
        "key": g.labels.get("key") or (sample[0].key if len(sample) == 1 else f"{g.count} transactions"),
        "keys": "; ".join(_line(s) for s in sample),
        "since": when(g.since),
        "age": age(g.since, now),
        "period_close": close.isoformat() if close else "",
        "period_close_in": _until(close, now),
    }
    keys = [f"{s.workflow}/{s.key}" for s in sample]
    if g.count == 1 and sample:
        path = transaction_path(sample[0].workflow, sample[0].key)
    else:
        path = overview_path({k: v for k, v in labels.items() if k in ("workflow", "facility", "state", "cause_kind")})
    return Match(labels, g.count, g.value, context, keys, path)


def _line(s: SampleTransaction) -> str:
    """One transaction of a group, as on-call reads it."""
    at = f" at {s.step}" if s.step else ""
    why = f": {s.detail}" if s.detail else ""
    where = f"{s.facility_name or 'no facility'}, {s.criticality}, {money(s.value)}"
    return f"{s.workflow} {s.key} ({where}) {s.state}{at}{why}"


def _until(close: date | None, now: datetime) -> str:
    if close is None:
        return ""
    seconds = (datetime.combine(close, time(0), tzinfo=UTC) - now).total_seconds()
    return "today" if seconds <= 0 else f"in {format_duration(seconds)}"


def queue_matches(rule: AlertRule, store: Store, settings: Settings, now: datetime) -> list[Match]:
    w = rule.when
    states = [
        s
        for s in current_queue_states(store, settings, now)
        if (w.queue_status is None or s.status in w.queue_status)
        and (w.queue is None or s.name in w.queue or (s.destination and s.destination in w.queue))
        and (w.min_backlog is None or (s.backlog or 0) >= w.min_backlog)
    ]
    waiting = stuck_by_component(store, sorted({n for s in states for n in (s.name, s.destination) if n}))
    groups: dict[tuple[str, ...], list[Any]] = {}
    for s in states:
        values = {"queue": s.name, "system": s.system, "queue_status": s.status}
        groups.setdefault(tuple(values[g] for g in rule.grouping), []).append(s)
    matches = []
    for key, members in groups.items():
        grouped = dict(zip(rule.grouping, key, strict=True))
        names = sorted({n for s in members for n in (s.name, s.destination) if n})
        count, value, workflows = _waiting_on(waiting, names)
        queue = one_or_count("queue", [s.name for s in members])
        labels = {**w.pinned(), **grouped, "cause_kind": str(CauseKind.QUEUE_BACKLOG)}
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
            "cause_kind": str(CauseKind.QUEUE_BACKLOG),
            "cause_component": queue,
            "since": when(min((s.sampled_at for s in members if s.sampled_at), default=None)),
            "age": format_duration(oldest) if oldest else "unknown",
        }
        path = overview_path(
            {"cause_kind": str(CauseKind.QUEUE_BACKLOG), "cause_component": labels.get("cause_component", "")}
        )
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
    waiting = stuck_by_component(store, [r[0] for r in failing])
    groups: dict[tuple[str, ...], list[Sequence[Any]]] = {}
    for r in failing:
        groups.setdefault(tuple(r[0] for _ in rule.grouping), []).append(r)
    matches = []
    for key, members in groups.items():
        services = [m[0] for m in members]
        calls, errors = sum(int(m[1]) for m in members), sum(int(m[2]) for m in members)
        first = min((m[3] for m in members), default=None)
        count, value, workflows = _waiting_on(waiting, services)
        labels = {
            **w.pinned(),
            **dict(zip(rule.grouping, key, strict=True)),
            "cause_kind": str(CauseKind.DEPENDENCY_ERROR),
        }
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
            "cause_kind": str(CauseKind.DEPENDENCY_ERROR),
            "cause_component": service,
            "since": when(first),
            "age": age(first, now),
        }
        path = overview_path(
            {"cause_kind": str(CauseKind.DEPENDENCY_ERROR), "cause_component": labels.get("cause_component", "")}
        )
        matches.append(Match(labels, count, value, context, [], path))
    return matches


def _waiting_on(waiting: dict[str, StuckComponent], components: list[str]) -> tuple[int, float, list[str]]:
    """Stuck transactions waiting on any of `components`: count, value, workflows."""
    found = [waiting[c] for c in components if c in waiting]
    return sum(f.count for f in found), sum(f.value for f in found), sorted({w for f in found for w in f.workflows})
