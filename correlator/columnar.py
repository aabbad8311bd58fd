"""The fast path of judgement: a worklist's events held as columns, each transaction judged in one pass
over its rows, and the flow questions (what comes next, by when) answered once per workflow, step, tier
and condition outcome instead of once per transaction.

correlator/machine.py's `evaluate` stays the reference and the readable statement of the rules; this
module must give the same verdicts (tests/correlator/test_columnar.py holds it to that on the scenario
tests and on seeded random workflows and events). Only the events that follow a transaction's last
progress become `Event` objects, for the cause attribution both paths share (`machine.judge_wait`); most
transactions have none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from correlator.machine import Context, Event, Verdict, judge_wait
from triage.settings import Step, Workflow
from triage.vocabulary import State

# business_events column → EventColumns field, in the order the worklist selects them.
COLUMNS = {
    "Workflow": "workflow",
    "Key": "key",
    "Step": "step",
    "At": "at",
    "Source": "source",
    "Service": "service",
    "TraceId": "trace_id",
    "SpanKind": "span_kind",
    "Status": "status",
    "Failure": "failure",
    "Detail": "detail",
    "Peer": "peer",
    "Destination": "destination",
    "MessageId": "message_id",
    "Facility": "facility",
    "Value": "value",
    "Received": "received",
    "Attributes": "attributes",
}
_EVENT_FIELDS = [f for f in COLUMNS.values() if f not in ("workflow", "key")]


@dataclass
class EventColumns:
    """A worklist's events, one list per business_events column; the rows of a transaction are adjacent
    and in time order (the worklist's query orders them so)."""

    workflow: Sequence[str]
    key: Sequence[str]
    step: Sequence[str]
    at: Sequence[datetime]
    source: Sequence[str]
    service: Sequence[str]
    trace_id: Sequence[str]
    span_kind: Sequence[str]
    status: Sequence[str]
    failure: Sequence[Any]  # UInt8 from the store, bool from events
    detail: Sequence[str]
    peer: Sequence[str]
    destination: Sequence[str]
    message_id: Sequence[str]
    facility: Sequence[str]
    value: Sequence[float]
    received: Sequence[datetime | None]
    attributes: Sequence[Mapping[str, str]] | None = None  # None: not read (no condition names one)

    def __len__(self) -> int:
        return len(self.workflow)

    def event(self, i: int) -> Event:
        """Row `i` as the reference machine's Event."""
        return Event(
            self.step[i],
            self.at[i],
            self.source[i],
            self.service[i],
            self.trace_id[i],
            self.span_kind[i],
            self.status[i],
            bool(self.failure[i]),
            self.detail[i],
            self.peer[i],
            self.destination[i],
            self.message_id[i],
            self.facility[i],
            float(self.value[i]),
            self.attributes[i] if self.attributes is not None else {},
            self.received[i],
        )

    def events(self, lo: int, hi: int) -> list[Event]:
        return [self.event(i) for i in range(lo, hi)]

    def transactions(self) -> Iterator[tuple[str, str, int, int]]:
        """(workflow, key, first row, one past the last row) of each transaction, in row order."""
        workflow, key = self.workflow, self.key
        n = len(workflow)
        lo = 0
        for i in range(1, n + 1):
            if i == n or key[i] != key[lo] or workflow[i] != workflow[lo]:
                yield workflow[lo], key[lo], lo, i
                lo = i

    @classmethod
    def of(cls, transactions: Mapping[tuple[str, str], Sequence[Event]]) -> EventColumns:
        """Columns of events given per transaction (in any order: each transaction's are sorted by time,
        stably, as the reference machine sorts them)."""
        out: dict[str, list[Any]] = {name: [] for name in COLUMNS.values()}
        for (workflow, key), events in transactions.items():
            for e in sorted(events, key=lambda e: e.at):
                out["workflow"].append(workflow)
                out["key"].append(key)
                for name in _EVENT_FIELDS:
                    out[name].append(getattr(e, name))
        return cls(**out)


@dataclass(frozen=True)
class Next:
    """What a transaction at a step waits for: the required steps it may reach next, whether the flow
    ends there, and the step and SLA (seconds; None: no SLA) it is judged late by."""

    frontier: list[Step]
    ends_here: bool
    step: Step | None
    sla: float | None


@dataclass
class FlowPlan:
    """A workflow's flow questions, answered once per (step, tier, outcome of its conditions) and kept."""

    workflow: Workflow
    terminal: frozenset[str] = frozenset()
    conditional: tuple[Step, ...] = ()
    uses_attributes: bool = False
    _next: dict[tuple[Any, ...], Next] = field(default_factory=dict)
    _sla: dict[tuple[str, str], float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, workflow: Workflow) -> FlowPlan:
        conditional = tuple(s for s in workflow.steps if s.when is not None)
        return cls(
            workflow,
            frozenset(workflow.terminal),
            conditional,
            any(s.when is not None and bool(s.when.attributes) for s in conditional),
        )

    def next(self, current: str, value: float, held: Mapping[str, set[str]], criticality: str) -> Next:
        """The frontier of `current` and the SLA it runs on; only conditional steps can change it per transaction."""
        outcome = tuple(s.applies(value, held) for s in self.conditional)
        ident = (current, criticality, outcome)
        found = self._next.get(ident)
        if found is None:
            applies = {id(s): ok for s, ok in zip(self.conditional, outcome, strict=True)}
            found = self._next[ident] = self._answer(current, criticality, applies)
        return found

    def _answer(self, current: str, criticality: str, applies: dict[int, bool]) -> Next:
        wf = self.workflow
        frontier = wf.frontier(current, lambda step: applies.get(id(step), True))
        ends = not frontier and any(s.name in self.terminal for s in wf.next_steps(current))
        if not frontier:
            return Next(frontier, ends, None, None)
        slas = [s.sla.for_criticality(criticality) if s.sla else None for s in frontier]
        if any(v is None for v in slas):
            return Next(frontier, ends, next(s for s, v in zip(frontier, slas, strict=True) if v is None), None)
        longest = max(v for v in slas if v is not None)
        step = next(s for s, v in zip(frontier, slas, strict=True) if v == longest)
        return Next(frontier, ends, step, longest)

    def sla(self, step_name: str, criticality: str) -> float | None:
        """The SLA of a step for a tier (None: the step has none, or there is no such step)."""
        ident = (step_name, criticality)
        if ident not in self._sla:
            step = self.workflow.step(step_name) if step_name else None
            self._sla[ident] = step.sla.for_criticality(criticality) if step and step.sla else None
        return self._sla[ident]


def held_attributes(cols: EventColumns, lo: int, hi: int) -> dict[str, set[str]]:
    """Every value each condition attribute took on the transaction's rows."""
    held: dict[str, set[str]] = {}
    if cols.attributes is None:
        return held
    for i in range(lo, hi):
        for name, value in cols.attributes[i].items():
            held.setdefault(name, set()).add(value)
    return held


def judge(plan: FlowPlan, cols: EventColumns, lo: int, hi: int, ctx: Context) -> Verdict:
    """State, step, due time and cause of the transaction in rows [lo, hi): machine.evaluate's verdict."""
    step, status, failure, at = cols.step, cols.status, cols.failure, cols.at
    last = -1
    for i in range(hi - 1, lo - 1, -1):
        if step[i] and status[i] == "ok" and not failure[i]:
            last = i
            break
    started, updated = at[lo], at[hi - 1]
    facility = next((f for f in cols.facility[lo:hi] if f), "")
    value = float(max(cols.value[lo:hi]))
    held = held_attributes(cols, lo, hi) if plan.uses_attributes else {}
    current = step[last] if last >= 0 else ""
    last_at = at[last] if last >= 0 else started
    nxt = plan.next(current, value, held, ctx.criticality)
    if last >= 0 and (current in plan.terminal or nxt.ends_here):
        return Verdict(State.COMPLETED, current, "", started, updated, None, facility, value, None)
    due = last_at + timedelta(seconds=nxt.sla) if nxt.sla is not None else None
    verdict = Verdict(
        State.IN_PROGRESS,
        current,
        nxt.step.name if nxt.step else "",
        started,
        updated,
        due,
        facility,
        value,
        None,
        waiting_since=last_at,
    )
    # Rows at or after the last progress, itself excepted (ties in time before it count, as in the machine).
    first = lo
    if last >= 0:
        first = last
        while first > lo and at[first - 1] >= last_at:
            first -= 1
    after = [i for i in range(first, hi) if i != last]
    if not after and (due is None or ctx.now <= due):
        return verdict
    last_event = cols.event(last) if last >= 0 else None
    return judge_wait(verdict, last_event, [cols.event(i) for i in after], nxt.frontier, nxt.step, ctx)
