"""One transaction for the drill-down: its row, step events, causes with evidence, traces and logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dashboards.queries.transactions import Transaction
from triage.store import Store

ONE = """
SELECT Workflow, Key, State, Facility, FacilityName, Criticality, CurrentStep, NextStep, StartedAt, UpdatedAt,
       DueAt, Value, Priority, CauseKind, CauseComponent, CauseDetail, CauseSince
FROM business_transactions FINAL
WHERE Workflow = {workflow:String} AND Key = {key:String}
"""
EVENTS = """
SELECT Step, At, Source, Service, TraceId, SpanKind, Status, Failure, Detail, Peer, Destination
FROM business_events FINAL
WHERE Workflow = {workflow:String} AND Key = {key:String}
ORDER BY At
LIMIT 2000
"""
CAUSES = """
SELECT Kind, Component, Detail, Since, Evidence, DetectedAt, Active
FROM transaction_causes FINAL
WHERE Workflow = {workflow:String} AND Key = {key:String}
ORDER BY Active DESC, DetectedAt DESC
LIMIT 50
"""
TRACES = """
SELECT TraceId, min(FirstSeen) AS first_seen, any(Via) AS via
FROM trace_keys
WHERE Workflow = {workflow:String} AND Key = {key:String}
GROUP BY TraceId
ORDER BY first_seen
LIMIT 200
"""
# Logs of the transaction's traces (bloom-filter index on TraceId); the day partitions before its start are skipped.
LOGS = """
SELECT Timestamp, SeverityText, ServiceName, Body, TraceId
FROM otel_logs
WHERE TraceId IN {traces:Array(String)} AND TimestampTime >= {since:DateTime}
ORDER BY Timestamp
LIMIT 200
"""


@dataclass(frozen=True)
class StepEvent:
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
class LogLine:
    at: datetime
    severity: str
    service: str
    body: str
    trace_id: str


@dataclass(frozen=True)
class TransactionDetail:
    transaction: Transaction
    events: list[StepEvent]
    causes: list[CauseRecord]
    trace_ids: list[str]
    logs: list[LogLine]


def _evidence(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def transaction_detail(store: Store, workflow: str, key: str) -> TransactionDetail | None:
    """Everything the drill-down shows about one transaction, or None when the store has no such one."""
    params = {"workflow": workflow, "key": key}
    row = store.query(ONE, params).first_row
    if not row:
        return None
    tx = Transaction(*row)
    events = [
        StepEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10])
        for r in store.query(EVENTS, params).result_rows
    ]
    causes = [
        CauseRecord(r[0], r[1], r[2], r[3], _evidence(r[4]), r[5], bool(r[6]))
        for r in store.query(CAUSES, params).result_rows
    ]
    traces = [r[0] for r in store.query(TRACES, params).result_rows]
    for e in events:
        if e.trace_id and e.trace_id not in traces:
            traces.append(e.trace_id)
    logs: list[LogLine] = []
    if traces:
        since = tx.started_at - timedelta(hours=1)
        rows = store.query(LOGS, {"traces": traces, "since": since.replace(microsecond=0)}).result_rows
        logs = [LogLine(r[0], r[1], r[2], r[3], r[4]) for r in rows]
    return TransactionDetail(tx, events, causes, traces, logs)
