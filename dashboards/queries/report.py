"""Aggregates for the executive stall report over a period [start, end).

A transaction counts for a period when it started in it. It *stalled* when it is stuck now (stalled,
blocked, failed) or a cause was recorded for it at any time since it started (it got stuck, then
recovered); the causes breakdown counts the same transactions, so its figures are shares of the
period's stalls. Cycle time is StartedAt → UpdatedAt (the completing step, the transaction's last
event) of transactions completed in the period, to the nanosecond: SLAs of seconds (the demo at
--speed) must not be judged on whole seconds.

Each figure has two sources that give the same numbers: the raw tables over any [start, end), and the
snapshot of migration 0020 (`transaction_report`, refreshed every 120 s), which holds them by the hour a
transaction started before the snapshot's refresh. A period that ends at the refresh and spans whole
hours is read from the snapshot (a few thousand rows, whatever the store holds); any other from the raw
tables. Cycle times come from the snapshot for the report's PERIODS only, and only while the targets it
judged them by are the caller's (triage/targets.py); the worst offenders for up to ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dashboards.queries.snapshots import ensure_fresh
from triage.store import Store
from triage.vocabulary import STUCK, State, names

_IN_PERIOD = "StartedAt >= {start:DateTime64(9)} AND StartedAt < {end:DateTime64(9)}"
_STALLED = """(has({stuck:Array(String)}, State)
   OR (Workflow, Key) IN (SELECT Workflow, Key FROM transaction_causes))"""

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
ORDER BY stalled DESC, value_stalled DESC, Workflow, Facility, day
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
# The causes of the period's transactions (started in it), as _STALLED counts them. uniqExact over
# (Workflow, Key) counts each transaction once, merged or not, so no FINAL is needed on
# transaction_causes; ties go by name, so the leading cause is stable.
CAUSES = f"""
SELECT Kind, Component, uniqExact(Workflow, Key) AS transactions, groupUniqArray(5)(Workflow) AS workflows
FROM transaction_causes
WHERE Kind != ''
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
ORDER BY Priority DESC, Value DESC, Workflow, Key
LIMIT {{limit:UInt32}}
"""

# The same figures from the snapshot (migration 0020), for the transactions filed under Age lo..hi.
SNAPSHOT_VIEW = "transaction_report_mv"
_AGES = "Age BETWEEN {lo:UInt32} AND {hi:UInt32}"
SNAPSHOT_BREAKDOWNS = f"""
SELECT Part = 'workflow' AS by_workflow, Part = 'facility' AS by_facility, Workflow, Facility, Day AS day,
       any(FacilityName) AS name, any(Criticality) AS criticality, sum(Started) AS started,
       sum(Completed) AS completed, sum(StuckNow) AS stuck_now, sum(Stalled) AS stalled,
       sum(ValueStalled) AS value_stalled, sum(ValueStuck) AS value_stuck
FROM transaction_report
WHERE Part IN ('workflow', 'facility', 'day') AND {_AGES}
GROUP BY Part, Workflow, Facility, Day
ORDER BY stalled DESC, value_stalled DESC, Workflow, Facility, day
"""
SNAPSHOT_CYCLE_TIMES = """
SELECT Workflow, Criticality, n, q[1], q[2], within, target_seconds
FROM (
    SELECT Workflow, Criticality, sum(Completed) AS n, quantilesMerge(0.5, 0.95)(Seconds) AS q, sum(Within) AS within,
           any(Target) AS target_seconds
    FROM transaction_report
    WHERE Part = 'cycle' AND Age = {window:UInt32}
    GROUP BY Workflow, Criticality
)
ORDER BY Workflow, Criticality
"""
SNAPSHOT_CAUSES = f"""
SELECT CauseKind, CauseComponent, sum(Started) AS transactions,
       arraySlice(arraySort(groupUniqArray(CAST(Workflow, 'String'))), 1, 5) AS workflows
FROM transaction_report
WHERE Part = 'cause' AND {_AGES}
GROUP BY CauseKind, CauseComponent
ORDER BY transactions DESC, CauseKind, CauseComponent
LIMIT {{limit:UInt32}}
"""
# Worst holds (-Priority, -Value, Workflow, Key, ...) in ascending order: WORST's order.
SNAPSHOT_WORST = f"""
SELECT w.3, w.4, w.5, w.6, w.7, w.8, w.9, w.10, -w.2, -w.1, w.11, w.12, w.13
FROM (SELECT arrayJoin(groupArraySortedMerge(10)(Worst)) AS w FROM transaction_report WHERE Part = 'day' AND {_AGES})
ORDER BY w
LIMIT {{limit:UInt32}}
"""
# The report's named periods (dashboards/report/model.py PERIODS), whose cycle times the snapshot holds.
CYCLE_WINDOWS = (86_400, 604_800, 1_209_600, 2_592_000, 7_776_000)
WORST_KEPT = 10
HOUR = timedelta(hours=1)
# A snapshot older than this is refreshed before a report reads it, however long that takes: the store
# was closed meanwhile (its timer did not run), and a report must not end that far back.
STALE = timedelta(minutes=10)


@dataclass(frozen=True)
class Snapshot:
    """The report snapshot as of its refresh, `at`."""

    at: datetime

    def ages(self, start: datetime, end: datetime) -> dict[str, int] | None:
        """The Age range of the transactions that started in [start, end), when the snapshot holds it."""
        back, span = self.at - end, end - start
        if back < timedelta(0) or span <= timedelta(0) or back % HOUR or span % HOUR:
            return None
        return {"lo": back // HOUR + 1, "hi": (back + span) // HOUR}

    def window(self, start: datetime, end: datetime) -> int | None:
        """The cycle-time window holding completions in [start, end), when the snapshot holds it."""
        span = end - start
        if end != self.at or span % timedelta(seconds=1):
            return None
        seconds = int(span.total_seconds())
        return seconds if seconds in CYCLE_WINDOWS else None


def snapshot(store: Store) -> Snapshot | None:
    """The report snapshot brought up to date as the pages' snapshots are (refreshed on read when that is
    cheap), and whenever it is older than STALE; None while it holds nothing."""
    ensure_fresh(store, SNAPSHOT_VIEW, stale=STALE)
    n, at = store.query("SELECT count(), min(RefreshedAt) FROM transaction_report").result_rows[0]
    return Snapshot(_aware(at)) if n else None


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


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


def breakdowns(
    store: Store, start: datetime, end: datetime, facilities: int = 10, snap: Snapshot | None = None
) -> Breakdowns:
    """Stalls by workflow (most first), by facility (top `facilities` with any) and by day (in order)."""
    out = Breakdowns([], [], [])
    ages = snap.ages(start, end) if snap else None
    rows = store.query(SNAPSHOT_BREAKDOWNS, ages) if ages else store.query(BREAKDOWNS, _period(start, end))
    for r in rows.result_rows:
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


def cycle_times(
    store: Store, start: datetime, end: datetime, targets: dict[str, float], snap: Snapshot | None = None
) -> list[CycleTime]:
    """Per workflow and criticality; `targets` maps "workflow|criticality" to the end-to-end SLA in seconds."""
    window = snap.window(start, end) if snap else None
    if window:
        rows = store.query(SNAPSHOT_CYCLE_TIMES, {"window": window}).result_rows
        if all(targets.get(f"{r[0]}|{r[1]}", 0.0) == r[6] for r in rows):
            return [_cycle_time(r) for r in rows]
    params = {**_period(start, end), "target_keys": list(targets), "target_values": list(targets.values())}
    return [_cycle_time(r) for r in store.query(CYCLE_TIMES, params).result_rows]


def _cycle_time(r: Any) -> CycleTime:
    return CycleTime(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), int(r[5]), float(r[6]))


def cause_stalls(
    store: Store, start: datetime, end: datetime, limit: int = 10, snap: Snapshot | None = None
) -> list[CauseStalls]:
    ages = snap.ages(start, end) if snap else None
    if ages:
        rows = store.query(SNAPSHOT_CAUSES, {**ages, "limit": limit}).result_rows
    else:
        rows = store.query(CAUSES, {**_period(start, end), "limit": limit}).result_rows
    return [CauseStalls(r[0], r[1], int(r[2]), sorted(r[3])) for r in rows]


def worst_offenders(
    store: Store, start: datetime, end: datetime, limit: int = 10, snap: Snapshot | None = None
) -> list[Offender]:
    ages = snap.ages(start, end) if snap and limit <= WORST_KEPT else None
    if ages:
        rows = store.query(SNAPSHOT_WORST, {**ages, "limit": limit}).result_rows
    else:
        rows = store.query(WORST, {**_period(start, end), "limit": limit}).result_rows
    return [Offender(*r) for r in rows]
