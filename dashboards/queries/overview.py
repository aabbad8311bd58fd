"""The overview's transaction figures from the snapshots of migration 0017 (dashboards/queries/snapshots.py):
counts by state and cause groups from `transaction_rollup`, the lists of stuck and at-risk transactions
from `transactions_attention`.

They give what the read model's state_counts, cause_groups and list_transactions give over
`business_transactions FINAL` (correlator/transactions.py, the reference tests/dashboards/test_aggregates.py
compares them with), as of the snapshot: a range is measured back from the snapshot's refresh.
"""

from __future__ import annotations

from typing import Any

from correlator import CauseGroup, StateCount, Transaction, TransactionFilter, cause_group
from dashboards.queries.snapshots import ensure_fresh
from triage.store import Store
from triage.vocabulary import STUCK, names

READ_COLUMNS = (
    "Workflow, Key, State, Facility, FacilityName, Criticality, CurrentStep, NextStep, StartedAt, UpdatedAt, DueAt, "
    "Value, Priority, CauseKind, CauseComponent, CauseDetail, CauseSince, NextStepEta, RiskAt, ForecastBasis"
)
# The filters of a TransactionFilter (its params()) over snapshot columns.
_MATCH = """({workflow:String} = '' OR Workflow = {workflow:String})
  AND (empty({states:Array(String)}) OR has({states:Array(String)}, State))
  AND ({facility:String} = '' OR Facility = {facility:String})
  AND ({criticality:String} = '' OR Criticality = {criticality:String})
  AND ({cause_kind:String} = '' OR CauseKind = {cause_kind:String})
  AND ({cause_component:String} = '' OR CauseComponent = {cause_component:String})"""
# Started: the shortest range holding the transaction's start (0017); stuck ones count whenever they started.
_ROLLUP_WHERE = f"{_MATCH}\n  AND (Started <= {{window:UInt32}} OR has({{stuck:Array(String)}}, State))"
_ROWS_WHERE = f"""{_MATCH}
  AND UpdatedAt >= {{updated_since:DateTime64(9)}}
  AND (StartedAt >= {{active_since:DateTime64(9)}} OR has({{stuck:Array(String)}}, State))
  AND ({{at_risk_check:UInt8}} = 0 OR coalesce(State = {{open:String}} AND RiskAt <= {{now:DateTime64(9)}}
                                           AND {{now:DateTime64(9)}} < DueAt, 0) = {{at_risk:UInt8}})"""
STATE_COUNTS = f"""
SELECT Workflow, State, Criticality, sum(Transactions) AS n, sum(Value) AS value, sum(Overdue) AS overdue,
       min(OldestCause) AS oldest_cause
FROM transaction_rollup
WHERE {_ROLLUP_WHERE}
GROUP BY Workflow, State, Criticality
ORDER BY Workflow, State, Criticality
"""
# Stuck transactions count whenever they started, so a cause group depends on the equality filters only.
CAUSE_GROUPS = f"""
SELECT Workflow, CauseKind, CauseComponent, sum(Transactions) AS n, sum(Value) AS value, min(OldestCause) AS since,
       sumIf(Transactions, Criticality = {{critical:String}}) AS critical,
       groupUniqArrayMerge(10)(FacilityNames) AS facilities, argMaxMerge(TopDetail) AS detail,
       argMaxMerge(TopKey) AS top_key, groupArraySortedMerge(5)(Top) AS top
FROM transaction_rollup
WHERE has({{stuck:Array(String)}}, State) AND {_MATCH}
GROUP BY Workflow, CauseKind, CauseComponent
ORDER BY n DESC, value DESC
LIMIT {{limit:UInt32}}
"""
LIST = f"""
SELECT {READ_COLUMNS}
FROM transactions_attention
WHERE {_ROWS_WHERE}
ORDER BY Priority DESC, UpdatedAt DESC, Workflow DESC, Key DESC
LIMIT {{limit:UInt32}}
"""
OPTIONS = """
SELECT 'workflow' AS what, Workflow AS value, '' AS label FROM transaction_rollup GROUP BY Workflow
UNION ALL
SELECT 'facility', Facility, any(FacilityName) FROM transaction_rollup WHERE Facility != '' GROUP BY Facility
LIMIT 2000
"""
# Which workflows each component currently hurts: stuck transactions whose cause names it.
HURT = """
SELECT CauseComponent, CauseKind, Workflow, count() AS n, sum(Value) AS value,
       countIf(Criticality = 'critical') AS critical
FROM transactions_attention
WHERE State IN {stuck:Array(String)} AND CauseComponent != ''
GROUP BY CauseComponent, CauseKind, Workflow
ORDER BY n DESC
LIMIT 500
"""


def _params(where: TransactionFilter, window: int) -> dict[str, Any]:
    return {**where.params(), "window": window}


def state_counts(store: Store, where: TransactionFilter, window: int) -> list[StateCount]:
    """Transactions by workflow, state and criticality that started in the last `window` seconds or are stuck."""
    ensure_fresh(store, "transaction_rollup_mv")
    rows = store.query(STATE_COUNTS, _params(where, window)).result_rows
    return [StateCount(r[0], r[1], r[2], int(r[3]), float(r[4]), int(r[5]), r[6]) for r in rows]


def cause_groups(store: Store, where: TransactionFilter, limit: int = 10) -> list[CauseGroup]:
    """Stuck transactions grouped by workflow, cause and component, largest group first."""
    ensure_fresh(store, "transaction_rollup_mv")
    return [cause_group(r) for r in store.query(CAUSE_GROUPS, {**where.params(), "limit": limit}).result_rows]


def attention(store: Store, where: TransactionFilter, limit: int = 25) -> list[Transaction]:
    """Stuck or at-risk transactions matching `where`, highest priority first (other states: none)."""
    ensure_fresh(store, "transactions_attention_mv")
    result = store.query(LIST, {**where.params(), "limit": limit})
    return [Transaction.from_row(result.column_names, r) for r in result.result_rows]


def filter_options(store: Store) -> tuple[list[str], dict[str, str]]:
    """Workflows and facilities (id → name) that transactions in the store carry."""
    ensure_fresh(store, "transaction_rollup_mv")
    workflows: list[str] = []
    facilities: dict[str, str] = {}
    for what, value, label in store.query(OPTIONS).result_rows:
        if what == "workflow":
            workflows.append(value)
        else:
            facilities[value] = label or value
    return sorted(workflows), dict(sorted(facilities.items(), key=lambda kv: kv[1]))


def hurt_rows(store: Store) -> list[tuple[str, str, str, int, float, int]]:
    """(component, cause kind, workflow, stuck count, value, critical count), largest first."""
    ensure_fresh(store, "transactions_attention_mv")
    rows = store.query(HURT, {"stuck": names(STUCK)}).result_rows
    return [(r[0], r[1], r[2], int(r[3]), float(r[4]), int(r[5])) for r in rows]
