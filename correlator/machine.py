"""The per-transaction state machine over compact business events, and cause attribution.

Pure functions: the engine loads a transaction's events (and the health of its dependencies) and
gets back its state, current step, due time and cause, in the vocabulary of triage.vocabulary
(docs/correlation.md explains each state and cause).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from triage.settings import Step, Workflow
from triage.vocabulary import CauseKind, State


@dataclass(frozen=True)
class Event:
    """One row of business_events, as the machine needs it."""

    step: str
    at: datetime
    source: str
    service: str
    trace_id: str
    span_kind: str
    status: str
    failure: bool
    detail: str
    peer: str
    destination: str
    message_id: str
    facility: str
    value: float
    # The attributes a workflow's `when:` conditions name, as this event's span or log record held them.
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    received: datetime | None = None  # when the store first got its span or log record


@dataclass(frozen=True)
class Health:
    """A dependency's recent health: error share, error count, first error time, last error text."""

    calls: int
    errors: int
    first_error: datetime | None
    last_detail: str

    def unhealthy(self, rate: float, min_errors: int) -> bool:
        return self.errors >= min_errors and self.errors / max(self.calls, 1) >= rate


@dataclass(frozen=True)
class QueueInfo:
    name: str
    status: str
    backlog: int
    oldest_age_seconds: float | None


@dataclass
class Cause:
    kind: str
    component: str
    detail: str
    since: datetime | None
    evidence: dict[str, object] = field(default_factory=dict)


@dataclass
class Verdict:
    state: str
    current_step: str
    next_step: str
    started_at: datetime
    updated_at: datetime
    due_at: datetime | None
    facility: str
    value: float
    cause: Cause | None
    overdue: bool = False  # stuck because the next step is overdue (not at once, by a failure or error)
    waiting_since: datetime | None = None  # when the wait for the next step began (its SLA runs from there)


@dataclass
class Context:
    """What the machine may consult beyond the transaction's own events."""

    now: datetime
    criticality: str
    health: Mapping[str, Health]
    queues: Mapping[str, QueueInfo]
    error_rate: float = 0.2
    min_errors: int = 3


def _due(frontier: list[Step], last_at: datetime, criticality: str) -> tuple[Step | None, datetime | None]:
    """The step the transaction waits for and when it is overdue. Between alternatives (a gateway) it is
    late only when it is late for every way it may go: the longest SLA counts, and none if one has none."""
    if not frontier:
        return None, None
    slas = [s.sla.for_criticality(criticality) if s.sla else None for s in frontier]
    if any(v is None for v in slas):
        return next(s for s, v in zip(frontier, slas, strict=True) if v is None), None
    longest = max(v for v in slas if v is not None)
    step = next(s for s, v in zip(frontier, slas, strict=True) if v == longest)
    return step, last_at + timedelta(seconds=longest)


def attributes_held(events: Sequence[Event]) -> dict[str, set[str]]:
    """Every value each condition attribute took on any of the transaction's events."""
    held: dict[str, set[str]] = {}
    for e in events:
        for name, value in e.attributes.items():
            held.setdefault(name, set()).add(value)
    return held


def evaluate(workflow: Workflow, events: Sequence[Event], ctx: Context) -> Verdict:
    """State, step, due time and cause of one transaction from all its events (any order)."""
    ordered = sorted(events, key=lambda e: e.at)
    progress = [e for e in ordered if e.step and e.status == "ok" and not e.failure]
    started = ordered[0].at
    facility = next((e.facility for e in ordered if e.facility), "")
    value = max((e.value for e in ordered), default=0.0)
    held = attributes_held(ordered)
    last = progress[-1] if progress else None
    current = last.step if last else ""
    last_at = last.at if last else started
    updated = ordered[-1].at
    frontier = workflow.frontier(current, lambda step: step.applies(value, held))
    if last is not None and (current in workflow.terminal or _ends_here(workflow, current, frontier)):
        return Verdict(State.COMPLETED, current, "", started, updated, None, facility, value, None)
    next_step, due = _due(frontier, last_at, ctx.criticality)
    after = [e for e in ordered if e.at >= last_at and e is not last]
    verdict = Verdict(
        State.IN_PROGRESS,
        current,
        next_step.name if next_step else "",
        started,
        updated,
        due,
        facility,
        value,
        None,
        waiting_since=last_at,
    )
    return judge_wait(verdict, last, after, frontier, next_step, ctx)


def judge_wait(
    verdict: Verdict,
    last: Event | None,
    after: list[Event],
    frontier: list[Step],
    next_step: Step | None,
    ctx: Context,
) -> Verdict:
    """The verdict of a transaction waiting for `frontier` since its last progress `last` (None: since its
    first event), from what happened since (`after`): failed, blocked, overdue (stalled or blocked) or
    still in progress. Shared by evaluate() and the columnar fast path (correlator/columnar.py)."""
    due = verdict.due_at
    current = verdict.current_step
    cause = _failure(after) or _own_errors(after)
    if cause is not None:
        verdict.state = State.FAILED if cause.kind == CauseKind.TRANSFORMATION_FAILED else State.BLOCKED
        verdict.cause = cause
        return verdict
    if due is None or ctx.now <= due:
        return verdict
    # The step's own event counts as sent: a step recognised by its producer span is a message handed on.
    sent = [last, *after] if last is not None else after
    verdict.overdue = True
    cause = _pending_message(sent, ctx) or _unhealthy_next(frontier, ctx)
    if cause is not None:
        verdict.state, verdict.cause = State.BLOCKED, cause
    elif next_step is not None and next_step.human:
        verdict.state = State.STALLED
        overdue = ctx.now - due
        verdict.cause = Cause(
            CauseKind.AWAITING_APPROVAL,
            next_step.match.service or next_step.name,
            f"{next_step.name} overdue by {_human(overdue)}; its systems are healthy",
            due,
        )
    else:
        verdict.state = State.STALLED
        verdict.cause = Cause(
            CauseKind.UNKNOWN,
            next_step.name if next_step else current,
            "next step overdue and no technical fault found",
            due,
        )
    return verdict


def _ends_here(workflow: Workflow, current: str, frontier: list[Step]) -> bool:
    """Nothing is required after `current` and a terminal step lies beyond it, skipped (optional or not
    applying to this transaction): the flow is done."""
    return not frontier and any(s.name in workflow.terminal for s in workflow.next_steps(current))


def _failure(after: list[Event]) -> Cause | None:
    failures = [e for e in after if e.failure]
    if not failures:
        return None
    first = failures[0]
    return Cause(
        CauseKind.TRANSFORMATION_FAILED,
        first.service,
        first.detail or "transformation failed",
        first.at,
        {
            "trace_ids": sorted({e.trace_id for e in failures if e.trace_id}),
            "details": [e.detail for e in failures[-3:]],
        },
    )


def _own_errors(after: list[Event]) -> Cause | None:
    """The transaction's own calls after its last progress fail, and the last call did not succeed."""
    by_component: dict[str, list[Event]] = {}
    for e in after:
        if e.source != "span" or not (e.status == "error" or e.span_kind in ("Client", "Server", "Internal")):
            continue
        by_component.setdefault(e.peer or e.service, []).append(e)
    for component, calls in by_component.items():
        errors = [e for e in calls if e.status == "error"]
        if errors and calls[-1].status == "error":
            return Cause(
                CauseKind.DEPENDENCY_ERROR,
                component,
                errors[-1].detail or "calls fail",
                errors[0].at,
                {"trace_ids": sorted({e.trace_id for e in errors if e.trace_id}), "errors": len(errors)},
            )
    return None


def _pending_message(sent: list[Event], ctx: Context) -> Cause | None:
    """A message the transaction sent since its last progress that no consumer has taken yet."""
    consumed = {e.message_id for e in sent if e.span_kind == "Consumer" and e.message_id}
    consumed_dest = {e.destination for e in sent if e.span_kind == "Consumer" and not e.message_id}
    for e in reversed(sent):
        if e.span_kind != "Producer" or not e.destination:
            continue
        if (e.message_id and e.message_id in consumed) or (not e.message_id and e.destination in consumed_dest):
            continue
        queue = ctx.queues.get(e.destination)
        evidence: dict[str, object] = {
            "trace_ids": [e.trace_id],
            "message_id": e.message_id,
            "queue": e.destination,
        }
        detail = f"message waits in {e.destination} since {e.at:%H:%M}"
        if queue is not None:
            evidence.update(
                queue_status=queue.status, backlog=queue.backlog, oldest_age_seconds=queue.oldest_age_seconds
            )
            detail = f"message waits in {queue.name} (status {queue.status}, backlog {queue.backlog:,})"
        return Cause(CauseKind.QUEUE_BACKLOG, queue.name if queue else e.destination, detail, e.at, evidence)
    return None


def _unhealthy_next(frontier: list[Step], ctx: Context) -> Cause | None:
    """The first service among the steps the transaction waits for that fails too often."""
    for step in frontier:
        if not step.match.service:
            continue
        health = ctx.health.get(step.match.service)
        if health is None or not health.unhealthy(ctx.error_rate, ctx.min_errors):
            continue
        share = 100 * health.errors / max(health.calls, 1)
        detail = f"{step.match.service} fails {share:.0f}% of calls ({health.last_detail})"
        return Cause(
            CauseKind.DEPENDENCY_ERROR,
            step.match.service,
            detail,
            health.first_error,
            {"errors": health.errors, "calls": health.calls},
        )
    return None


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"
