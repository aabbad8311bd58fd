"""Business transactions now: counts by workflow × state × criticality, grouped causes, the most urgent ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboards.filters import STUCK_STATES, Filters
from triage.store import Store

# Every transaction query reads business_transactions FINAL (ReplacingMergeTree: the newest Version).
# The time range bounds the transactions that moved or finished; a stuck one is shown however old,
# because being stuck is a condition of now (and an alert about it links here without a range).
FILTER = """({workflow:String} = '' OR Workflow = {workflow:String})
  AND ({facility:String} = '' OR Facility = {facility:String})
  AND ({criticality:String} = '' OR Criticality = {criticality:String})
  AND ({state:String} = '' OR State = {state:String})
  AND ({cause:String} = '' OR CauseKind = {cause:String})
  AND ({component:String} = '' OR CauseComponent = {component:String})
  AND (StartedAt >= {since:DateTime64(9)} OR State IN ('stalled', 'blocked', 'failed'))"""

STATE_COUNTS = f"""
SELECT Workflow, State, Criticality, count() AS n, sum(Value) AS value,
       countIf(DueAt IS NOT NULL AND DueAt < now64(9)) AS overdue, min(CauseSince) AS oldest_cause
FROM business_transactions FINAL
WHERE {FILTER}
GROUP BY Workflow, State, Criticality
ORDER BY Workflow, State, Criticality
"""
CAUSE_GROUPS = f"""
SELECT Workflow, CauseKind, CauseComponent, count() AS n, sum(Value) AS value, min(CauseSince) AS since,
       countIf(Criticality = 'critical') AS critical, groupUniqArray(5)(FacilityName) AS facilities,
       argMax(CauseDetail, Priority) AS detail, argMax(Key, Priority) AS top_key
FROM business_transactions FINAL
WHERE State IN {{stuck:Array(String)}} AND {FILTER}
GROUP BY Workflow, CauseKind, CauseComponent
ORDER BY n DESC, value DESC
LIMIT {{limit:UInt32}}
"""
TOP_STUCK = f"""
SELECT Workflow, Key, State, Facility, FacilityName, Criticality, CurrentStep, NextStep, StartedAt, UpdatedAt,
       DueAt, Value, Priority, CauseKind, CauseComponent, CauseDetail, CauseSince
FROM business_transactions FINAL
WHERE State IN {{stuck:Array(String)}} AND {FILTER}
ORDER BY Priority DESC, UpdatedAt DESC, Workflow, Key
LIMIT {{limit:UInt32}}
"""
# Filter choices: what the store holds, so a dropdown never offers a value that matches nothing.
OPTIONS = """
SELECT 'workflow' AS what, Workflow AS value, '' AS label FROM business_transactions GROUP BY Workflow
UNION ALL
SELECT 'facility', Facility, any(FacilityName) FROM business_transactions WHERE Facility != '' GROUP BY Facility
LIMIT 2000
"""


@dataclass(frozen=True)
class StateCount:
    workflow: str
    state: str
    criticality: str
    count: int
    value: float
    overdue: int
    oldest_cause: datetime | None


@dataclass(frozen=True)
class CauseGroup:
    workflow: str
    kind: str
    component: str
    count: int
    value: float
    since: datetime | None
    critical: int
    facilities: list[str]
    detail: str
    top_key: str


@dataclass(frozen=True)
class Transaction:
    workflow: str
    key: str
    state: str
    facility: str
    facility_name: str
    criticality: str
    current_step: str
    next_step: str
    started_at: datetime
    updated_at: datetime
    due_at: datetime | None
    value: float
    priority: float
    cause_kind: str
    cause_component: str
    cause_detail: str
    cause_since: datetime | None


def state_counts(store: Store, filters: Filters) -> list[StateCount]:
    """Transactions by workflow, state and facility criticality, with their value."""
    rows = store.query(STATE_COUNTS, filters.sql()).result_rows
    return [StateCount(r[0], r[1], r[2], int(r[3]), float(r[4]), int(r[5]), r[6]) for r in rows]


def cause_groups(store: Store, filters: Filters, limit: int = 10) -> list[CauseGroup]:
    """Stuck transactions grouped by cause and component, largest group first."""
    params = {**filters.sql(), "stuck": list(STUCK_STATES), "limit": limit}
    return [
        CauseGroup(r[0], r[1], r[2], int(r[3]), float(r[4]), r[5], int(r[6]), sorted(r[7]), r[8], r[9])
        for r in store.query(CAUSE_GROUPS, params).result_rows
    ]


def top_stuck(store: Store, filters: Filters, limit: int = 25) -> list[Transaction]:
    """The highest-priority stuck transactions."""
    params = {**filters.sql(), "stuck": list(STUCK_STATES), "limit": limit}
    return [Transaction(*r) for r in store.query(TOP_STUCK, params).result_rows]


def filter_options(store: Store) -> tuple[list[str], dict[str, str]]:
    """Workflows and facilities (id → name) that transactions in the store carry."""
    workflows: list[str] = []
    facilities: dict[str, str] = {}
    for what, value, label in store.query(OPTIONS).result_rows:
        if what == "workflow":
            workflows.append(value)
        else:
            facilities[value] = label or value
    return sorted(workflows), dict(sorted(facilities.items(), key=lambda kv: kv[1]))
