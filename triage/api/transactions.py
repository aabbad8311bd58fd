"""Business transactions: list with filters and cursor pagination, one with its timeline, grouped causes."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from triage.api.deps import get_runtime, get_store
from triage.runtime import Runtime
from triage.store import Store

router = APIRouter(tags=["transactions"])
STATES = ("in_progress", "completed", "stalled", "blocked", "failed")
CauseKind = Literal["queue_backlog", "dependency_error", "transformation_failed", "awaiting_approval", "unknown"]

_COLUMNS = """Workflow, Key, State, Facility, FacilityName, Criticality, CurrentStep, NextStep, StartedAt, UpdatedAt,
DueAt, Value, Priority, CauseKind, CauseComponent, CauseDetail, CauseSince"""
_LIST = f"""
SELECT {_COLUMNS} FROM business_transactions FINAL
WHERE ({{workflow:String}} = '' OR Workflow = {{workflow:String}})
  AND (length({{states:Array(String)}}) = 0 OR has({{states:Array(String)}}, State))
  AND ({{facility:String}} = '' OR Facility = {{facility:String}})
  AND ({{criticality:String}} = '' OR Criticality = {{criticality:String}})
  AND ({{cause:String}} = '' OR CauseKind = {{cause:String}})
  AND UpdatedAt >= {{since:DateTime64(9)}}
  AND ({{after_priority:Float64}} < 0
       OR (Priority, UpdatedAt, Workflow, Key) < ({{after_priority:Float64}}, {{after_updated:DateTime64(9)}},
                                                  {{after_workflow:String}}, {{after_key:String}}))
ORDER BY Priority DESC, UpdatedAt DESC, Workflow DESC, Key DESC
LIMIT {{limit:UInt32}}
"""
_ONE = (
    f"SELECT {_COLUMNS} FROM business_transactions FINAL WHERE Workflow = {{workflow:String}} AND Key = {{key:String}}"
)
_TIMELINE = """
SELECT Step, At, Service, TraceId, Status, Source, Detail, SpanKind, Destination, Failure
FROM business_events FINAL WHERE Workflow = {workflow:String} AND Key = {key:String}
ORDER BY At
LIMIT 1000
"""
_CAUSES = """
SELECT Kind, Component, Detail, Since, Evidence, DetectedAt, Active FROM transaction_causes FINAL
WHERE Workflow = {workflow:String} AND Key = {key:String}
ORDER BY DetectedAt DESC
"""
_GROUPED = """
SELECT Workflow, CauseKind, CauseComponent, count() AS n, sum(Value) AS value, min(CauseSince) AS since,
       groupUniqArray(10)(FacilityName) AS facilities, countIf(Criticality = 'critical') AS critical,
       any(CauseDetail) AS detail, groupArray(5)(Key) AS sample_keys
FROM business_transactions FINAL
WHERE State IN ('stalled', 'blocked', 'failed') AND ({workflow:String} = '' OR Workflow = {workflow:String})
GROUP BY Workflow, CauseKind, CauseComponent
ORDER BY n DESC, value DESC
LIMIT 100
"""


class Cause(BaseModel):
    kind: str
    component: str
    detail: str
    since: datetime | None = None


class Transaction(BaseModel):
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
    cause: Cause | None


class TransactionPage(BaseModel):
    items: list[Transaction]
    next: str | None


class TimelineEntry(BaseModel):
    step: str
    at: datetime
    service: str
    trace_id: str
    status: str
    source: str
    detail: str
    kind: str
    destination: str
    failure: bool


class CauseRecord(Cause):
    evidence: dict[str, Any]
    detected_at: datetime
    active: bool


class TransactionDetail(Transaction):
    timeline: list[TimelineEntry]
    causes: list[CauseRecord]


class CauseGroup(BaseModel):
    workflow: str
    kind: str
    component: str
    count: int
    value: float
    since: datetime | None
    facilities: list[str]
    critical: int
    detail: str
    sample_keys: list[str]
    summary: str


def _transaction(r: Sequence[Any]) -> Transaction:
    cause = Cause(kind=r[13], component=r[14], detail=r[15], since=r[16]) if r[13] else None
    return Transaction(
        workflow=r[0],
        key=r[1],
        state=r[2],
        facility=r[3],
        facility_name=r[4],
        criticality=r[5],
        current_step=r[6],
        next_step=r[7],
        started_at=r[8],
        updated_at=r[9],
        due_at=r[10],
        value=r[11],
        priority=r[12],
        cause=cause,
    )


def _encode_cursor(t: Transaction) -> str:
    raw = json.dumps([t.priority, t.updated_at.isoformat(), t.workflow, t.key])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, datetime, str, str]:
    try:
        priority, updated, workflow, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(priority), datetime.fromisoformat(updated), str(workflow), str(key)
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, "cursor is not one this API returned; pass the `next` value unchanged") from exc


@router.get("/transactions", response_model=TransactionPage)
def list_transactions(
    store: Annotated[Store, Depends(get_store)],
    workflow: str = "",
    state: Annotated[list[str] | None, Query(description="repeat or comma-separate: state=stalled,blocked")] = None,
    facility: str = "",
    criticality: Literal["", "critical", "high", "normal"] = "",
    cause: Literal[
        "", "queue_backlog", "dependency_error", "transformation_failed", "awaiting_approval", "unknown"
    ] = "",
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> TransactionPage:
    """Transactions, highest priority first; `next` is the cursor of the following page."""
    states = [s.strip() for value in (state or []) for s in value.split(",") if s.strip()]
    unknown = sorted(set(states) - set(STATES))
    if unknown:
        raise HTTPException(422, f"unknown state {', '.join(unknown)}: use {', '.join(STATES)}")
    after = _decode_cursor(cursor) if cursor else (-1.0, datetime(1970, 1, 1), "", "")
    params = {
        "workflow": workflow,
        "states": states,
        "facility": facility,
        "criticality": criticality,
        "cause": cause,
        "since": since or datetime(1970, 1, 1),
        "limit": limit + 1,
        "after_priority": after[0],
        "after_updated": after[1],
        "after_workflow": after[2],
        "after_key": after[3],
    }
    rows = store.query(_LIST, params).result_rows
    items = [_transaction(r) for r in rows[:limit]]
    return TransactionPage(items=items, next=_encode_cursor(items[-1]) if len(rows) > limit else None)


@router.get(
    "/transactions/{workflow}/{key}",
    response_model=TransactionDetail,
    responses={404: {"description": "no such transaction"}},
)
def get_transaction(store: Annotated[Store, Depends(get_store)], workflow: str, key: str) -> TransactionDetail:
    """One transaction with its timeline (step, at, service, trace_id, status) and its causes."""
    row = store.query(_ONE, {"workflow": workflow, "key": key}).first_row
    if not row:
        raise HTTPException(404, f"no {workflow} transaction with key {key!r}")
    timeline = [
        TimelineEntry(
            step=r[0],
            at=r[1],
            service=r[2],
            trace_id=r[3],
            status=r[4],
            source=r[5],
            detail=r[6],
            kind=r[7],
            destination=r[8],
            failure=bool(r[9]),
        )
        for r in store.query(_TIMELINE, {"workflow": workflow, "key": key}).result_rows
    ]
    causes = [
        CauseRecord(
            kind=r[0],
            component=r[1],
            detail=r[2],
            since=r[3],
            evidence=json.loads(r[4] or "{}"),
            detected_at=r[5],
            active=bool(r[6]),
        )
        for r in store.query(_CAUSES, {"workflow": workflow, "key": key}).result_rows
    ]
    return TransactionDetail(**_transaction(row).model_dump(), timeline=timeline, causes=causes)


@router.get("/causes", response_model=list[CauseGroup])
def grouped_causes(store: Annotated[Store, Depends(get_store)], workflow: str = "") -> list[CauseGroup]:
    """Stuck transactions grouped by cause: "312 procure_to_pay blocked by approval-saas dependency_error"."""
    out = []
    for r in store.query(_GROUPED, {"workflow": workflow}).result_rows:
        since = f" since {r[5]:%Y-%m-%d %H:%M} UTC" if r[5] else ""
        summary = f"{r[3]:,} {r[0]} stuck: {r[1]} on {r[2]}{since} (${r[4]:,.0f} at risk)"
        out.append(
            CauseGroup(
                workflow=r[0],
                kind=r[1],
                component=r[2],
                count=r[3],
                value=r[4],
                since=r[5],
                facilities=sorted(r[6]),
                critical=r[7],
                detail=r[8],
                sample_keys=list(r[9]),
                summary=summary,
            )
        )
    return out


class ReplayResult(BaseModel):
    window_start: datetime
    window_end: datetime
    touched_traces: int
    events: int
    evaluated: int
    seconds: float


@router.post("/replay", response_model=ReplayResult)
def replay(
    runtime: Annotated[Runtime, Depends(get_runtime)], from_: Annotated[datetime, Query(alias="from")], to: datetime
) -> ReplayResult:
    """Rebuild the transactions of spans between `from` and `to` (what `triage replay` asks a server)."""
    from correlator import Correlator

    if to <= from_:
        raise HTTPException(422, "`to` must be after `from`")
    correlator = runtime.extras.get("correlator")
    if correlator is None:
        correlator = runtime.extras.setdefault("correlator", Correlator(runtime.store, runtime.settings))
    result = correlator.replay(from_, to)
    return ReplayResult(**result.__dict__)
