"""Verdicts as rows: one of business_transactions per judged transaction, and the transaction_causes
rows that open a new cause and close the one it replaces."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from correlator.forecast import Forecast
from correlator.machine import Verdict
from correlator.priority import score
from triage.settings import Workflow
from triage.vocabulary import STUCK


class Unknown:
    """Not given: look it up."""


UNKNOWN = Unknown()


def transaction_row(
    workflow: Workflow,
    key: str,
    v: Verdict,
    facility_name: str,
    criticality: str,
    now: datetime,
    close: float,
    version: int,
    forecast: Forecast | None = None,
    sla: float | None | Unknown = UNKNOWN,
) -> list[Any]:
    """A row in correlator.transactions.TRANSACTION_COLUMNS order; `sla`, the next step's SLA for the
    tier, when the caller has it at hand."""
    if isinstance(sla, Unknown):
        step = workflow.step(v.next_step)
        sla = step.sla.for_criticality(criticality) if step and step.sla else None
    overdue = (now - v.due_at).total_seconds() if v.due_at else 0.0
    priority = score(v.state, criticality, v.value, overdue, sla, close)
    cause = v.cause
    return [
        workflow.name,
        key,
        v.state,
        v.facility,
        facility_name,
        criticality,
        v.current_step,
        v.next_step,
        v.started_at,
        v.updated_at,
        v.due_at,
        v.value,
        priority,
        cause.kind if cause else "",
        cause.component if cause else "",
        cause.detail if cause else "",
        cause.since if cause else None,
        forecast.next_step_eta if forecast else None,
        forecast.risk_at if forecast else None,
        forecast.basis if forecast else "",
        version,
    ]


def cause_rows(
    workflow: str,
    key: str,
    v: Verdict,
    previous: tuple[str, str, str] | None,
    now: datetime,
    version: int,
) -> list[list[Any]]:
    """Rows in correlator.transactions.CAUSE_COLUMNS order: the previous cause closed when it changed,
    the current one (while stuck) with its evidence."""
    rows = []
    cause = v.cause if v.state in STUCK else None
    if previous and previous[0] and (cause is None or (cause.kind, cause.component) != previous[:2]):
        rows.append([workflow, key, previous[0], previous[1], "", None, "{}", now, 0, version])
    if cause is not None:
        evidence = json.dumps(cause.evidence, default=str)
        rows.append([workflow, key, cause.kind, cause.component, cause.detail, cause.since, evidence, now, 1, version])
    return rows
