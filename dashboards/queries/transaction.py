"""One transaction for the drill-down: the read model's row, timeline and causes, with its traces and logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from correlator import CauseRecord, TimelineEvent, Transaction, cause_history, get_transaction, timeline
from triage.store import Store

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
class LogLine:
    at: datetime
    severity: str
    service: str
    body: str
    trace_id: str


@dataclass(frozen=True)
class TransactionDetail:
    transaction: Transaction
    events: list[TimelineEvent]
    causes: list[CauseRecord]
    trace_ids: list[str]
    logs: list[LogLine]


def transaction_detail(store: Store, workflow: str, key: str) -> TransactionDetail | None:
    """Everything the drill-down shows about one transaction, or None when the store has no such one."""
    params = {"workflow": workflow, "key": key}
    tx = get_transaction(store, workflow, key)
    if tx is None:
        return None
    events = timeline(store, workflow, key)
    causes = cause_history(store, workflow, key, limit=50)
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
