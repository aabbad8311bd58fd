"""Aggregates for the executive stall report over a period [start, end).

A transaction counts for a period when it started in it. It *stalled* when it is stuck now (stalled,
blocked, failed) or a cause was recorded for it at any time since it started (it got stuck, then
recovered); the causes breakdown counts the same transactions, so its figures are shares of the
period's stalls. Cycle time is StartedAt → UpdatedAt (the completing step, the transaction's last
event) of transactions completed in the period, to the nanosecond: SLAs of seconds (the demo at
--speed) must not be judged on whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from triage.store import Store
from triage.vocabulary import STUCK, State, names

_IN_PERIOD = "StartedAt >= {start:DateTime64(9)} AND StartedAt < {end:DateTime64(9)}"
_STALLED = """(has({stuck:Array(String)}, State)
   OR (Workflow, Key) IN (SELECT Workflow, Key FROM transaction_causes WHERE DetectedAt >= {start:DateTime64(9)}))"""

# One scan of the period's transactions answers three breakdowns: by workflow, by facility, by day.
# grouping(x) is 1 on the rows of the grouping sets that do not contain x.
BREAKDOWNS = f"""
SELECT grouping(Workflow) = 0 AS by_workflow, grouping(Facility) = 0 AS by_facility, Workflow, Facility, day,
       any(FacilityName) AS name, any(Criticality) AS criticality, count() AS started,
       countIf(State = {{completed:String}}) AS completed, countIf(stuck) AS stuck_now, countIf(was_stalled) AS stalled,
       sumIf(Value, was_stalled) AS value_stalled, sumIf(Value, stuck) AS value_stuck
FROM (
    SELECT Workflow, Facility, FacilityName, Criticality, toDate(StartedAt) AS day, State, Value,
           has({{stuck:Array(String)}}, State) AS stuck, {_STALLED} AS was_stalled
    FROM business_transactions FINAL
    WHERE {_IN_PERIOD}
)
GROUP BY GROUPING SETS ((Workflow), (Facility), (day))
ORDER BY stalled DESC, value_stalled DESC
"""
CYCLE_TIMES = """
SELECT Workflow, Criticality, count() AS n, quantile(0.5)(seconds) AS p50, quantile(0.95)(seconds) AS p95,
       countIf(seconds <= target) AS within, any(target) AS target_seconds
FROM (
    SELECT Workflow, Criticality,
           (toUnixTimestamp64Nano(UpdatedAt) - toUnixTimestamp64Nano(StartedAt)) / 1e9 AS seconds,
           transform(concat(Workflow, '|', Criticality), {target_keys:Array(String)},
                     {target_values:Array(Float64)}, 0.) AS target
    FROM business_transactions FINAL
    WHERE State = {completed:String} AND UpdatedAt >= {start:DateTime64(9)} AND UpdatedAt < {end:DateTime64(9)}
)
GROUP BY Workflow, Criticality
ORDER BY Workflow, Criticality
"""
# The causes of the period's transactions (started in it), recorded since the period began, as
# _STALLED counts them. uniqExact over (Workflow, Key) counts each transaction once, merged or not,
# so no FINAL is needed on transaction_causes; ties go by name, so the leading cause is stable.
CAUSES = f"""
SELECT Kind, Component, uniqExact(Workflow, Key) AS transactions, groupUniqArray(5)(Workflow) AS workflows
FROM transaction_causes
WHERE DetectedAt >= {{start:DateTime64(9)}} AND Kind != ''
  AND (Workflow, Key) IN (SELECT Workflow, Key FROM business_transactions FINAL WHERE {_IN_PERIOD})
GROUP BY Kind, Component
ORDER BY transactions DESC, Kind, Component
LIMIT {{limit:UInt32}}
"""
WORST = f"""
SELECT Workflow, Key, State, FacilityName, Criticality, CurrentStep, NextStep, StartedAt, Value, Priority,
       CauseKind, CauseComponent, CauseDetail
FROM business_transactions FINAL
WHERE {_IN_PERIOD} AND has({{stuck:Array(String)}}, State)
ORDER BY Priority DESC, Value DESC
LIMIT {{limit:UInt32}}
"""


@dataclass(frozen=True)
class WorkflowStalls:
    workflow: str
    started: int
    completed: int
    stuck_now: int
    stalled: int
    value_stalled: float
    value_stuck: float


@dataclass(frozen=True)
class CycleTime:
    workflow: str
    criticality: str
    completed: int
    p50_seconds: float
    p95_seconds: float
    within_target: int
    target_seconds: float


@dataclass(frozen=True)
class FacilityStalls:
    facility: str
    name: str
    criticality: str
    stalled: int
    started: int
    value_stalled: float


@dataclass(frozen=True)
class CauseStalls:
    kind: str
    component: str
    transactions: int
    workflows: list[str]


@dataclass(frozen=True)
class Day:
    day: date
    started: int
    stalled: int


@dataclass(frozen=True)
class Offender:
    workflow: str
    key: str
    state: str
    facility_name: str
    criticality: str
    current_step: str
    next_step: str
    started_at: datetime
    value: float
    priority: float
    cause_kind: str
    cause_component: str
    cause_detail: str


def _period(start: datetime, end: datetime) -> dict[str, Any]:
    return {"start": start, "end": end, "stuck": names(STUCK), "completed": str(State.COMPLETED)}


@dataclass
class Breakdowns:
    workflows: list[WorkflowStalls]
    facilities: list[FacilityStalls]
    days: list[Day]


def breakdowns(store: Store, start: datetime, end: datetime, facilities: int = 10) -> Breakdowns:
    """Stalls by workflow (most first), by facility (top `facilities` with any) and by day (in order)."""
    out = Breakdowns([], [], [])
    for r in store.query(BREAKDOWNS, _period(start, end)).result_rows:
        by_workflow, by_facility, workflow, facility, day, name, criticality = r[:7]
        started, completed, stuck_now, stalled, value_stalled, value_stuck = r[7:]
        if by_workflow:
            out.workflows.append(
                WorkflowStalls(
                    workflow, started, completed, stuck_now, stalled, float(value_stalled), float(value_stuck)
                )
            )
        elif by_facility:
            if stalled and len(out.facilities) < facilities:
                out.facilities.append(
                    FacilityStalls(facility, name or facility, criticality, stalled, started, float(value_stalled))
                )
        else:
            out.days.append(Day(day, started, stalled))
    out.days.sort(key=lambda d: d.day)
    return out


def cycle_times(store: Store, start: datetime, end: datetime, targets: dict[str, float]) -> list[CycleTime]:
    """Per workflow and criticality; `targets` maps "workflow|criticality" to the end-to-end SLA in seconds."""
    params = {**_period(start, end), "target_keys": list(targets), "target_values": list(targets.values())}
    return [
        CycleTime(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), int(r[5]), float(r[6]))
        for r in store.query(CYCLE_TIMES, params).result_rows
    ]


def cause_stalls(store: Store, start: datetime, end: datetime, limit: int = 10) -> list[CauseStalls]:
    rows = store.query(CAUSES, {**_period(start, end), "limit": limit}).result_rows
    return [CauseStalls(r[0], r[1], int(r[2]), sorted(r[3])) for r in rows]


def worst_offenders(store: Store, start: datetime, end: datetime, limit: int = 10) -> list[Offender]:
    rows = store.query(WORST, {**_period(start, end), "limit": limit}).result_rows
    return [Offender(*r) for r in rows]
