"""One workflow's flow: step-to-step transitions with durations, stuck counts per step, cycle times, throughput."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboards.filters import Filters
from dashboards.queries.snapshots import ensure_fresh
from triage.store import Store
from triage.vocabulary import STUCK, names

# From the snapshots of migration 0017 (dashboards/queries/snapshots.py); Window is the page's range in
# seconds (one of dashboards.filters.RANGES), measured back from the snapshot's refresh.
# Transitions are between consecutive reached steps of a transaction (a step's time is its first
# successful occurrence), counted in the range that holds the first of the two steps.
TRANSITIONS = """
SELECT FromStep, ToStep, sum(Transitions) AS n, quantilesMerge(0.5, 0.95)(Seconds) AS q
FROM workflow_transitions
WHERE Workflow = {workflow:String} AND Window = {window:UInt32}
GROUP BY FromStep, ToStep
ORDER BY n DESC, FromStep, ToStep
LIMIT 500
"""
_FILTERS = """Workflow = {workflow:String}
  AND ({facility:String} = '' OR Facility = {facility:String})
  AND ({criticality:String} = '' OR Criticality = {criticality:String})"""
STEP_STATES = f"""
SELECT CurrentStep, NextStep, State, sum(Transactions) AS n, sum(Value) AS value
FROM transaction_rollup
WHERE {_FILTERS} AND (Started <= {{window:UInt32}} OR has({{stuck_states:Array(String)}}, State))
GROUP BY CurrentStep, NextStep, State
"""
CYCLE_TIMES = f"""
SELECT sum(Transactions) AS n, quantilesMerge(0.5, 0.9, 0.95)(Seconds) AS q, histogramMerge(30)(Histogram) AS bins
FROM transaction_flow
WHERE {_FILTERS} AND Window = {{window:UInt32}} AND Kind = 'cycle'
"""
THROUGHPUT = f"""
SELECT Bucket AS t, sumIf(Transactions, Kind = 'started') AS started,
       sumIf(Transactions, Kind = 'completed') AS completed, sumIf(Stuck, Kind = 'started') AS stuck
FROM transaction_flow
WHERE {_FILTERS} AND Window = {{window:UInt32}} AND Kind IN ('started', 'completed')
GROUP BY t
ORDER BY t
"""


@dataclass(frozen=True)
class Transition:
    from_step: str
    to_step: str
    count: int
    p50_seconds: float
    p95_seconds: float


@dataclass(frozen=True)
class StepState:
    current_step: str
    next_step: str
    state: str
    count: int
    value: float


@dataclass(frozen=True)
class CycleTimes:
    count: int
    p50: float
    p90: float
    p95: float
    bins: list[tuple[float, float, float]]  # (lower seconds, upper seconds, height)


@dataclass(frozen=True)
class Throughput:
    times: list[datetime]
    started: list[int]
    completed: list[int]
    stuck: list[int]


def transitions(store: Store, workflow: str, window: int) -> list[Transition]:
    """Step-to-step transitions of `workflow` over the last `window` seconds (a dashboards RANGES value)."""
    ensure_fresh(store, "workflow_transitions_mv")
    rows = store.query(TRANSITIONS, {"workflow": workflow, "window": window}).result_rows
    return [Transition(r[0], r[1], int(r[2]), float(r[3][0]), float(r[3][1])) for r in rows]


def step_states(store: Store, filters: Filters) -> list[StepState]:
    ensure_fresh(store, "transaction_rollup_mv")
    rows = store.query(STEP_STATES, _params(filters)).result_rows
    return [StepState(r[0], r[1], r[2], int(r[3]), float(r[4])) for r in rows]


def cycle_times(store: Store, filters: Filters) -> CycleTimes:
    ensure_fresh(store, "transaction_flow_mv")
    row = store.query(CYCLE_TIMES, _params(filters)).first_row
    if not row or not row[0]:
        return CycleTimes(0, 0.0, 0.0, 0.0, [])
    q = [float(x) for x in row[1]]
    return CycleTimes(int(row[0]), q[0], q[1], q[2], [(float(a), float(b), float(h)) for a, b, h in row[2]])


def throughput(store: Store, filters: Filters) -> Throughput:
    ensure_fresh(store, "transaction_flow_mv")
    rows = store.query(THROUGHPUT, _params(filters)).result_rows
    return Throughput(
        [r[0] for r in rows], [int(r[1]) for r in rows], [int(r[2]) for r in rows], [int(r[3]) for r in rows]
    )


def _params(filters: Filters) -> dict[str, object]:
    return {**filters.sql(), "window": filters.seconds, "stuck_states": names(STUCK)}
