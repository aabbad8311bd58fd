"""The read model of business transactions: one row per transaction, its timeline, its causes, and
the groupings the API, the dashboards and alerts show. The correlator writes these tables; every
reader goes through this module, so a column is named in one place.

Every query reads `business_transactions FINAL` (ReplacingMergeTree: the newest Version wins).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from triage.store import Store
from triage.vocabulary import STUCK, CauseKind, Criticality, State, names

# The writer's column order (correlator.engine inserts rows in it); Version orders the replacements.
TRANSACTION_COLUMNS = [
    "Workflow",
    "Key",
    "State",
    "Facility",
    "FacilityName",
    "Criticality",
    "CurrentStep",
    "NextStep",
    "StartedAt",
    "UpdatedAt",
    "DueAt",
    "Value",
    "Priority",
    "CauseKind",
    "CauseComponent",
    "CauseDetail",
    "CauseSince",
    "NextStepEta",
    "RiskAt",
    "ForecastBasis",
    "Version",
]
CAUSE_COLUMNS = [
    "Workflow",
    "Key",
    "Kind",
    "Component",
    "Detail",
    "Since",
    "Evidence",
    "DetectedAt",
    "Active",
    "Version",
]
_READ = ", ".join(TRANSACTION_COLUMNS[:-1])
EPOCH = datetime(1970, 1, 1)

# Filters shared by every transaction query; an empty value means "any".
_WHERE = """({workflow:String} = '' OR Workflow = {workflow:String})
  AND (empty({states:Array(String)}) OR has({states:Array(String)}, State))
  AND ({facility:String} = '' OR Facility = {facility:String})
  AND ({criticality:String} = '' OR Criticality = {criticality:String})
  AND ({cause_kind:String} = '' OR CauseKind = {cause_kind:String})
  AND ({cause_component:String} = '' OR CauseComponent = {cause_component:String})
  AND UpdatedAt >= {updated_since:DateTime64(9)}
  AND (StartedAt >= {active_since:DateTime64(9)} OR has({stuck:Array(String)}, State))
  AND ({at_risk_check:UInt8} = 0 OR (__AT_RISK__) = {at_risk:UInt8})"""
# A forecast's risk time is written with the verdict (correlator/forecast.py): a transaction in progress
# is at risk from then until its SLA passes (then it is stuck, or about to be judged so).
AT_RISK = "coalesce(State = {open:String} AND RiskAt <= {now:DateTime64(9)} AND {now:DateTime64(9)} < DueAt, 0)"
_WHERE = _WHERE.replace("__AT_RISK__", AT_RISK)
_LIST = f"""
SELECT {_READ} FROM business_transactions FINAL
WHERE {_WHERE}
  AND ({{after_priority:Float64}} < 0
       OR (Priority, UpdatedAt, Workflow, Key) < ({{after_priority:Float64}}, {{after_updated:DateTime64(9)}},
                                                  {{after_workflow:String}}, {{after_key:String}}))
ORDER BY Priority DESC, UpdatedAt DESC, Workflow DESC, Key DESC
LIMIT {{limit:UInt32}}
"""
_ONE = f"SELECT {_READ} FROM business_transactions FINAL WHERE Workflow = {{workflow:String}} AND Key = {{key:String}}"
_TIMELINE = """
SELECT Step, At, Source, Service, TraceId, SpanKind, Status, Failure, Detail, Peer, Destination
FROM business_events FINAL
WHERE Workflow = {workflow:String} AND Key = {key:String}
ORDER BY At
LIMIT {limit:UInt32}
"""
_CAUSES = """
SELECT Kind, Component, Detail, Since, Evidence, DetectedAt, Active
FROM transaction_causes FINAL
WHERE Workflow = {workflow:String} AND Key = {key:String}
ORDER BY Active DESC, DetectedAt DESC
LIMIT {limit:UInt32}
"""
_GROUPS = f"""
SELECT Workflow, CauseKind, CauseComponent, count() AS n, sum(Value) AS value, min(CauseSince) AS since,
       countIf(Criticality = {{critical:String}}) AS critical, groupUniqArray(10)(FacilityName) AS facilities,
       argMax(CauseDetail, Priority) AS detail, argMax(Key, Priority) AS top_key,
       groupArraySorted(5)((-Priority, Key)) AS top
FROM business_transactions FINAL
WHERE has({{stuck:Array(String)}}, State) AND {_WHERE}
GROUP BY Workflow, CauseKind, CauseComponent
ORDER BY n DESC, value DESC
LIMIT {{limit:UInt32}}
"""
_STATE_COUNTS = f"""
SELECT Workflow, State, Criticality, count() AS n, sum(Value) AS value,
       countIf(DueAt IS NOT NULL AND DueAt < now64(9)) AS overdue, min(CauseSince) AS oldest_cause
FROM business_transactions FINAL
WHERE {_WHERE}
GROUP BY Workflow, State, Criticality
ORDER BY Workflow, State, Criticality
"""
# group label → column (our own constants, never user text).
GROUP_COLUMNS = {
    "workflow": "Workflow",
    "key": "Key",
    "state": "State",
    "facility": "Facility",
    "criticality": "Criticality",
    "cause_kind": "CauseKind",
    "cause_component": "CauseComponent",
    "step": "CurrentStep",
}
_SELECTED = """
FROM business_transactions FINAL
WHERE has({states:Array(String)}, State)
  AND (empty({workflows:Array(String)}) OR has({workflows:Array(String)}, Workflow))
  AND (empty({criticalities:Array(String)}) OR has({criticalities:Array(String)}, Criticality))
  AND (empty({facilities:Array(String)}) OR has({facilities:Array(String)}, Facility))
  AND (empty({cause_kinds:Array(String)}) OR has({cause_kinds:Array(String)}, CauseKind))
  AND (empty({components:Array(String)}) OR has({components:Array(String)}, CauseComponent))
  AND (empty({steps:Array(String)}) OR has({steps:Array(String)}, CurrentStep))
  AND ({aged_check:UInt8} = 0 OR coalesce(CauseSince, UpdatedAt) <= {aged_before:DateTime64(9)})
  AND ({overdue_check:UInt8} = 0 OR (DueAt IS NOT NULL AND DueAt <= {due_before:DateTime64(9)}))
  AND Value >= {min_value:Float64}
  AND ({at_risk_check:UInt8} = 0 OR (__AT_RISK__) = {at_risk:UInt8})
""".replace("__AT_RISK__", AT_RISK)
# Aggregate-function parameters must be literals: {cap} is an int of ours, formatted in.
_GROUP_AGGREGATES = """
count() AS n, sum(Value) AS value, min(coalesce(CauseSince, UpdatedAt)) AS since,
groupUniqArray({cap})(Workflow), groupUniqArray({cap})(State), groupUniqArray({cap})(Facility),
groupUniqArray({cap})(FacilityName), groupUniqArray({cap})(Criticality),
groupUniqArray({cap})(CauseKind), groupUniqArray({cap})(CauseComponent),
groupUniqArray({cap})(CurrentStep),
topKIf(1)(tuple(CauseKind, CauseComponent, CauseDetail), CauseKind != '') AS top_cause,
groupArraySorted(5)((-Priority, Workflow, Key, FacilityName, Criticality, Value, State, CurrentStep, CauseDetail))
"""
# Filter choices: what the store holds, so a dropdown never offers a value that matches nothing.
_OPTIONS = """
SELECT 'workflow' AS what, Workflow AS value, '' AS label FROM business_transactions GROUP BY Workflow
UNION ALL
SELECT 'facility', Facility, any(FacilityName) FROM business_transactions WHERE Facility != '' GROUP BY Facility
LIMIT 2000
"""
_STUCK_ON = """
SELECT CauseComponent, count(), sum(Value), groupUniqArray(6)(Workflow)
FROM business_transactions FINAL
WHERE has({stuck:Array(String)}, State) AND has({components:Array(String)}, CauseComponent)
GROUP BY CauseComponent
"""


@dataclass(frozen=True)
class Cause:
    kind: CauseKind
    component: str
    detail: str
    since: datetime | None = None


@dataclass(frozen=True)
class Forecast:
    """When the transaction should move on, when its SLA passes, whether it is likely to miss it, and
    the history that says so."""

    next_step_eta: datetime
    breach_at: datetime | None
    at_risk: bool
    risk_at: datetime | None
    basis: str


@dataclass(frozen=True)
class Transaction:
    workflow: str
    key: str
    state: State
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
    cause: Cause | None
    forecast: Forecast | None  # None: not in flight, or too little history to forecast from

    @classmethod
    def from_row(cls, columns: Sequence[str], row: Sequence[Any], now: datetime | None = None) -> Transaction:
        """A transaction from a row of business_transactions, by column name; at risk or not as of `now`."""
        r = dict(zip(columns, row, strict=True))
        kind = r["CauseKind"]
        cause = Cause(CauseKind(kind), r["CauseComponent"], r["CauseDetail"], r["CauseSince"]) if kind else None
        return cls(
            workflow=r["Workflow"],
            key=r["Key"],
            state=State(r["State"]),
            facility=r["Facility"],
            facility_name=r["FacilityName"],
            criticality=r["Criticality"],
            current_step=r["CurrentStep"],
            next_step=r["NextStep"],
            started_at=r["StartedAt"],
            updated_at=r["UpdatedAt"],
            due_at=r["DueAt"],
            value=float(r["Value"]),
            priority=float(r["Priority"]),
            cause=cause,
            forecast=_forecast(r, now or datetime.now(UTC)),
        )


def _forecast(r: dict[str, Any], now: datetime) -> Forecast | None:
    """The stored forecast of a row; none once the transaction is no longer in flight."""
    eta, risk, due = r.get("NextStepEta"), r.get("RiskAt"), r["DueAt"]
    if eta is None or r["State"] in (State.COMPLETED, State.FAILED):
        return None
    at_risk = r["State"] == State.IN_PROGRESS and risk is not None and due is not None and risk <= now < due
    return Forecast(eta, due, at_risk, risk, r.get("ForecastBasis", ""))


@dataclass(frozen=True)
class TransactionFilter:
    """Which transactions a reader wants; empty fields match everything."""

    workflow: str = ""
    states: tuple[str, ...] = ()
    facility: str = ""
    criticality: str = ""
    cause_kind: str = ""
    cause_component: str = ""
    updated_since: datetime | None = None  # moved since then
    active_since: datetime | None = None  # started since then, or stuck now (being stuck is a condition of now)
    at_risk: bool | None = None  # at risk of missing its SLA now (forecast), or not; None: either

    def params(self) -> dict[str, Any]:
        return {
            **_at_risk_params(self.at_risk),
            "workflow": self.workflow,
            "states": [str(s) for s in self.states],
            "facility": self.facility,
            "criticality": self.criticality,
            "cause_kind": self.cause_kind,
            "cause_component": self.cause_component,
            "updated_since": self.updated_since or EPOCH,
            "active_since": self.active_since or EPOCH,
            "stuck": names(STUCK),
            "critical": str(Criticality.CRITICAL),
        }


@dataclass(frozen=True)
class After:
    """A position in the priority order: the page after it starts below it."""

    priority: float
    updated_at: datetime
    workflow: str
    key: str

    @classmethod
    def of(cls, t: Transaction) -> After:
        return cls(t.priority, t.updated_at, t.workflow, t.key)


@dataclass(frozen=True)
class TimelineEvent:
    step: str
    at: datetime
    source: str
    service: str
    trace_id: str
    kind: str
    status: str
    failure: bool
    detail: str
    peer: str
    destination: str


@dataclass(frozen=True)
class CauseRecord:
    kind: str
    component: str
    detail: str
    since: datetime | None
    evidence: dict[str, Any]
    detected_at: datetime
    active: bool


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
    detail: str  # of the highest-priority transaction in the group
    top_key: str  # the highest-priority transaction
    sample_keys: list[str]  # up to five, highest priority first
    summary: str  # "312 procure_to_pay stuck: dependency_error on approval-saas since ... ($1,234 at risk)"


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
class Selection:
    """Transactions as an alert rule selects them: lists of allowed values (empty: any), age and value bounds."""

    states: tuple[str, ...] = tuple(STUCK)
    workflows: tuple[str, ...] = ()
    criticalities: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()
    cause_kinds: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    aged_before: datetime | None = None  # stuck (or last updated) at or before this
    due_before: datetime | None = None  # due at or before this
    min_value: float = 0.0
    at_risk: bool | None = None  # at risk of missing its SLA (forecast) at `now`, or not; None: either
    now: datetime | None = None  # when at risk is judged (an evaluation's time); None: the wall clock

    def params(self) -> dict[str, Any]:
        return {
            **_at_risk_params(self.at_risk, self.now),
            "states": [str(s) for s in self.states],
            "workflows": list(self.workflows),
            "criticalities": [str(c) for c in self.criticalities],
            "facilities": list(self.facilities),
            "cause_kinds": [str(k) for k in self.cause_kinds],
            "components": list(self.components),
            "steps": list(self.steps),
            "aged_check": int(self.aged_before is not None),
            "aged_before": self.aged_before or EPOCH,
            "overdue_check": int(self.due_before is not None),
            "due_before": self.due_before or EPOCH,
            "min_value": self.min_value,
        }


@dataclass(frozen=True)
class SampleTransaction:
    workflow: str
    key: str
    facility_name: str
    criticality: str
    value: float
    state: str
    step: str
    detail: str


@dataclass(frozen=True)
class TransactionGroup:
    """Selected transactions sharing the values of the grouping labels; other fields hold up to `cap` values."""

    labels: dict[str, str]
    count: int
    value: float
    since: datetime | None
    workflows: list[str]
    states: list[str]
    facilities: list[str]
    facility_names: list[str]
    criticalities: list[str]
    cause_kinds: list[str]
    components: list[str]
    steps: list[str]
    top_cause: Cause | None  # the most common cause
    sample: list[SampleTransaction]  # up to five, highest priority first


@dataclass(frozen=True)
class StuckComponent:
    component: str
    count: int
    value: float
    workflows: list[str]


def list_transactions(
    store: Store, where: TransactionFilter, limit: int = 100, after: After | None = None
) -> list[Transaction]:
    """Transactions matching `where`, highest priority first, starting below `after`."""
    a = after or After(-1.0, EPOCH, "", "")
    params = {
        **where.params(),
        "limit": limit,
        "after_priority": a.priority,
        "after_updated": a.updated_at,
        "after_workflow": a.workflow,
        "after_key": a.key,
    }
    result = store.query(_LIST, params)
    return [Transaction.from_row(result.column_names, r) for r in result.result_rows]


def get_transaction(store: Store, workflow: str, key: str) -> Transaction | None:
    """One transaction, or None when the store has no such one."""
    result = store.query(_ONE, {"workflow": workflow, "key": key})
    rows = result.result_rows
    return Transaction.from_row(result.column_names, rows[0]) if rows else None


def timeline(store: Store, workflow: str, key: str, limit: int = 2000) -> list[TimelineEvent]:
    """The transaction's business events in time order."""
    rows = store.query(_TIMELINE, {"workflow": workflow, "key": key, "limit": limit}).result_rows
    return [TimelineEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10]) for r in rows]


def cause_history(store: Store, workflow: str, key: str, limit: int = 200) -> list[CauseRecord]:
    """The causes the transaction has had, the active one first, then the newest."""
    rows = store.query(_CAUSES, {"workflow": workflow, "key": key, "limit": limit}).result_rows
    return [CauseRecord(r[0], r[1], r[2], r[3], _evidence(r[4]), r[5], bool(r[6])) for r in rows]


def cause_groups(store: Store, where: TransactionFilter, limit: int = 100) -> list[CauseGroup]:
    """Stuck transactions grouped by workflow, cause and component, largest group first."""
    return [cause_group(r) for r in store.query(_GROUPS, {**where.params(), "limit": limit}).result_rows]


def cause_group(r: Sequence[Any]) -> CauseGroup:
    """A cause group from a row of _GROUPS' columns (the dashboards' pre-aggregated query gives the same)."""
    workflow, kind, component, n, value, since = r[0], r[1], r[2], int(r[3]), float(r[4]), r[5]
    when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    summary = f"{n:,} {workflow} stuck: {kind} on {component}{when} (${value:,.0f} at risk)"
    sample = [key for _, key in r[10]]
    return CauseGroup(workflow, kind, component, n, value, since, int(r[6]), sorted(r[7]), r[8], r[9], sample, summary)


def state_counts(store: Store, where: TransactionFilter) -> list[StateCount]:
    """Transactions by workflow, state and facility criticality, with their value."""
    rows = store.query(_STATE_COUNTS, where.params()).result_rows
    return [StateCount(r[0], r[1], r[2], int(r[3]), float(r[4]), int(r[5]), r[6]) for r in rows]


def filter_options(store: Store) -> tuple[list[str], dict[str, str]]:
    """Workflows and facilities (id → name) that transactions in the store carry."""
    workflows: list[str] = []
    facilities: dict[str, str] = {}
    for what, value, label in store.query(_OPTIONS).result_rows:
        if what == "workflow":
            workflows.append(value)
        else:
            facilities[value] = label or value
    return sorted(workflows), dict(sorted(facilities.items(), key=lambda kv: kv[1]))


def group_transactions(
    store: Store,
    selection: Selection,
    group_by: Sequence[str],
    *,
    count_over: int = 0,
    value_over: float = -1.0,
    cap: int = 6,
    limit: int = 1000,
) -> list[TransactionGroup]:
    """Selected transactions grouped by `group_by` labels (keys of GROUP_COLUMNS), largest value first;
    only groups of more than `count_over` transactions and more than `value_over` in value."""
    unknown = [g for g in group_by if g not in GROUP_COLUMNS]
    if unknown:
        raise ValueError(f"cannot group transactions by {unknown}; use some of {list(GROUP_COLUMNS)}")
    select = "".join(f"{GROUP_COLUMNS[g]} AS g_{g}, " for g in group_by)
    grouping = f"GROUP BY {', '.join(GROUP_COLUMNS[g] for g in group_by)}" if group_by else ""
    sql = (
        f"SELECT {select}{_GROUP_AGGREGATES.format(cap=int(cap))} {_SELECTED} {grouping} "
        "HAVING n > {count_over:UInt64} AND value > {value_over:Float64} ORDER BY value DESC, n DESC "
        "LIMIT {limit:UInt32}"
    )
    params = {**selection.params(), "count_over": count_over, "value_over": value_over, "limit": limit}
    out = []
    for row in store.query(sql, params).result_rows:
        labels = dict(zip(group_by, (str(v) for v in row[: len(group_by)]), strict=True))
        n, value, since, wfs, states, facs, fnames, crits, kinds, comps, steps, top, sample = row[len(group_by) :]
        cause = Cause(CauseKind(top[0][0]), str(top[0][1]), str(top[0][2])) if top else None
        out.append(
            TransactionGroup(
                labels=labels,
                count=int(n),
                value=float(value),
                since=since,
                workflows=_sorted(wfs),
                states=_sorted(states),
                facilities=_sorted(facs),
                facility_names=_sorted(fnames),
                criticalities=_sorted(crits),
                cause_kinds=_sorted(kinds),
                components=_sorted(comps),
                steps=_sorted(steps),
                top_cause=cause,
                sample=[SampleTransaction(s[1], s[2], s[3], s[4], float(s[5]), s[6], s[7], s[8]) for s in sample],
            )
        )
    return out


def stuck_by_component(store: Store, components: list[str]) -> dict[str, StuckComponent]:
    """Stuck transactions whose cause is one of `components`, by component."""
    if not components:
        return {}
    rows = store.query(_STUCK_ON, {"stuck": names(STUCK), "components": components}).result_rows
    return {r[0]: StuckComponent(r[0], int(r[1]), float(r[2]), sorted(r[3])) for r in rows}


def _at_risk_params(at_risk: bool | None, now: datetime | None = None) -> dict[str, Any]:
    """The parameters of the at-risk condition (None: no condition), judged at `now` (default: the wall clock)."""
    return {
        "at_risk_check": int(at_risk is not None),
        "at_risk": int(bool(at_risk)),
        "open": str(State.IN_PROGRESS),
        "now": now or datetime.now(UTC),
    }


def _sorted(values: Sequence[Any]) -> list[str]:
    return sorted(str(v) for v in values)


def _evidence(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}
