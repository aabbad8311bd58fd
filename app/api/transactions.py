"""Business transactions: list with filters and cursor pagination, one with its timeline, grouped causes."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

import correlator as readmodel
from app.api.access import actor
from app.api.deps import get_runtime, get_store
from app.runtime import Runtime
from correlator import CycleResult
from triage import audit
from triage.store import Store
from triage.times import StoreTime, storable
from triage.vocabulary import STATES, CauseKind, Criticality

router = APIRouter(tags=["transactions"])


class TransactionPage(BaseModel):
    items: list[readmodel.Transaction]
    next: str | None


@dataclass(frozen=True)
class TransactionDetail(readmodel.Transaction):
    """The item plus its timeline and causes."""

    timeline: list[readmodel.TimelineEvent]
    causes: list[readmodel.CauseRecord]


def _encode_cursor(t: readmodel.Transaction) -> str:
    raw = json.dumps([t.priority, t.updated_at.isoformat(), t.workflow, t.key])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> readmodel.After:
    try:
        priority, updated, workflow, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        after = readmodel.After(float(priority), storable(datetime.fromisoformat(updated)), str(workflow), str(key))
        if not math.isfinite(after.priority):
            raise ValueError("priority is not a number")
        return after
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, "cursor is not one this API returned; pass the `next` value unchanged") from exc


@router.get("/transactions", response_model=TransactionPage)
def list_transactions(
    store: Annotated[Store, Depends(get_store)],
    workflow: str = "",
    state: Annotated[list[str] | None, Query(description="repeat or comma-separate: state=stalled,blocked")] = None,
    facility: str = "",
    criticality: Criticality | Literal[""] = "",
    cause: CauseKind | Literal[""] = "",
    since: StoreTime | None = None,
    at_risk: Annotated[
        bool | None,
        Query(description="true: only transactions likely to miss their SLA by their forecast; false: the others"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> TransactionPage:
    """Transactions, highest priority first; `next` is the cursor of the following page."""
    states = [s.strip() for value in (state or []) for s in value.split(",") if s.strip()]
    unknown = sorted(set(states) - set(STATES))
    if unknown:
        raise HTTPException(422, f"unknown state {', '.join(unknown)}: use {', '.join(STATES)}")
    where = readmodel.TransactionFilter(
        workflow=workflow,
        states=tuple(states),
        facility=facility,
        criticality=criticality,
        cause_kind=cause,
        updated_since=since,
        at_risk=at_risk,
    )
    after = _decode_cursor(cursor) if cursor else None
    found = readmodel.list_transactions(store, where, limit + 1, after)
    items = found[:limit]
    return TransactionPage(items=items, next=_encode_cursor(items[-1]) if len(found) > limit else None)


@router.get(
    "/transactions/{workflow}/{key}",
    response_model=TransactionDetail,
    responses={404: {"description": "no such transaction"}},
)
def get_transaction(runtime: Annotated[Runtime, Depends(get_runtime)], workflow: str, key: str) -> TransactionDetail:
    """One transaction with its timeline (step, at, service, trace_id, status) and its causes. The key
    may be given in any spelling the workflow's `key_format` folds into its canonical form."""
    store = runtime.store
    definition = next((w for w in runtime.settings.workflows if w.name == workflow), None)
    if definition is not None:
        key = definition.key_format.canonical(key) or key
    found = readmodel.get_transaction(store, workflow, key)
    if found is None:
        raise HTTPException(404, f"no {workflow} transaction with key {key!r}")
    timeline = readmodel.timeline(store, workflow, key, limit=1000)
    causes = readmodel.cause_history(store, workflow, key)
    fields = {f.name: getattr(found, f.name) for f in dataclass_fields(found)}
    return TransactionDetail(**fields, timeline=timeline, causes=causes)


@router.get("/causes", response_model=list[readmodel.CauseGroup])
def grouped_causes(store: Annotated[Store, Depends(get_store)], workflow: str = "") -> list[readmodel.CauseGroup]:
    """Stuck transactions grouped by cause: "312 procure_to_pay blocked by approval-saas dependency_error"."""
    return readmodel.cause_groups(store, readmodel.TransactionFilter(workflow=workflow), limit=100)


@router.post("/replay", response_model=CycleResult)
def replay(
    http: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    from_: Annotated[StoreTime, Query(alias="from")],
    to: StoreTime,
) -> CycleResult:
    """Rebuild the transactions of spans between `from` and `to` (what `triage replay` asks a server)."""
    if to <= from_:
        raise HTTPException(422, "`to` must be after `from`")
    result = runtime.correlator.replay(from_, to)
    audit.record(runtime.store, actor(http), "replay", f"{from_.isoformat()}..{to.isoformat()}", result.__dict__)
    return result
