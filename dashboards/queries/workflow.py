"""One workflow's flow: step-to-step transitions with durations, stuck counts per step, cycle times, throughput."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboards.filters import Filters, bucket_seconds
from triage.store import Store
from triage.vocabulary import STUCK, State, names

# A step's time is its first successful occurrence; taking min() per (Key, Step) makes the result the
# same whether or not duplicate event rows have been merged yet, so no FINAL is needed.
# Transitions are between consecutive reached steps of a transaction, in time order.
TRANSITIONS = """
SELECT p.1 AS from_step, p.2 AS to_step, count() AS n,
       quantileExact(0.5)(p.3) AS p50, quantileExact(0.95)(p.3) AS p95
FROM (
    SELECT arraySort(x -> x.2, groupArray((Step, t))) AS seq
    FROM (
        SELECT Key, Step, min(At) AS t
        FROM business_events
        WHERE Workflow = {workflow:String} AND Step != '' AND Status = 'ok' AND Failure = 0
          AND At >= {since:DateTime64(9)}
        GROUP BY Key, Step
    )
    GROUP BY Key
)
ARRAY JOIN arrayMap((a, b) -> (a.1, b.1, toFloat64(dateDiff('millisecond', a.2, b.2)) / 1000),
                    arrayPopBack(seq), arrayPopFront(seq)) AS p
GROUP BY from_step, to_step
ORDER BY n DESC
LIMIT 500
"""
STEP_STATES = """
SELECT CurrentStep, NextStep, State, count() AS n, sum(Value) AS value
FROM business_transactions FINAL
WHERE Workflow = {workflow:String}
  AND (StartedAt >= {since:DateTime64(9)} OR has({stuck_states:Array(String)}, State))
  AND ({facility:String} = '' OR Facility = {facility:String})
  AND ({criticality:String} = '' OR Criticality = {criticality:String})
GROUP BY CurrentStep, NextStep, State
"""
CYCLE_TIMES = """
SELECT count() AS n, quantiles(0.5, 0.9, 0.95)(seconds) AS q, histogram(30)(seconds) AS bins
FROM (
    SELECT dateDiff('nanosecond', StartedAt, UpdatedAt) / 1e9 AS seconds
    FROM business_transactions FINAL
    WHERE Workflow = {workflow:String} AND State = {completed:String} AND UpdatedAt >= {since:DateTime64(9)}
      AND ({facility:String} = '' OR Facility = {facility:String})
      AND ({criticality:String} = '' OR Criticality = {criticality:String})
)
"""
THROUGHPUT = """
SELECT t, sum(started) AS started, sum(completed) AS completed, sum(stuck) AS stuck
FROM (
    SELECT toStartOfInterval(StartedAt, toIntervalSecond({bucket:UInt32})) AS t, 1 AS started,
           0 AS completed, State IN {stuck_states:Array(String)} AS stuck
    FROM business_transactions FINAL
    WHERE Workflow = {workflow:String} AND StartedAt >= {since:DateTime64(9)}
      AND ({facility:String} = '' OR Facility = {facility:String})
      AND ({criticality:String} = '' OR Criticality = {criticality:String})
    UNION ALL
    SELECT toStartOfInterval(UpdatedAt, toIntervalSecond({bucket:UInt32})), 0, 1, 0
    FROM business_transactions FINAL
    WHERE Workflow = {workflow:String} AND State = {completed:String} AND UpdatedAt >= {since:DateTime64(9)}
      AND ({facility:String} = '' OR Facility = {facility:String})
      AND ({criticality:String} = '' OR Criticality = {criticality:String})
)
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


def transitions(store: Store, workflow: str, since: datetime) -> list[Transition]:
    rows = store.query(TRANSITIONS, {"workflow": workflow, "since": since}).result_rows
    return [Transition(r[0], r[1], int(r[2]), float(r[3]), float(r[4])) for r in rows]


def step_states(store: Store, filters: Filters) -> list[StepState]:
    rows = store.query(STEP_STATES, _params(filters)).result_rows
    return [StepState(r[0], r[1], r[2], int(r[3]), float(r[4])) for r in rows]


def cycle_times(store: Store, filters: Filters) -> CycleTimes:
    row = store.query(CYCLE_TIMES, _params(filters)).first_row
    if not row or not row[0]:
        return CycleTimes(0, 0.0, 0.0, 0.0, [])
    q = [float(x) for x in row[1]]
    return CycleTimes(int(row[0]), q[0], q[1], q[2], [(float(a), float(b), float(h)) for a, b, h in row[2]])


def throughput(store: Store, filters: Filters) -> Throughput:
    params = {**_params(filters), "bucket": bucket_seconds(filters.seconds)}
    rows = store.query(THROUGHPUT, params).result_rows
    return Throughput(
        [r[0] for r in rows], [int(r[1]) for r in rows], [int(r[2]) for r in rows], [int(r[3]) for r in rows]
    )


def _params(filters: Filters) -> dict[str, object]:
    return {**filters.sql(), "stuck_states": names(STUCK), "completed": str(State.COMPLETED)}
