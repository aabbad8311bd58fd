"""The correlation loop: watermark-driven cycles of stitching (SQL) and state evaluation (Python).

Each cycle reads what was ingested since the last watermark (minus an overlap for inserts that
became visible late), stitches it into business events, re-evaluates every transaction those
events touch plus every open transaction whose next step is now due, writes the new states
(ReplacingMergeTree by Version) and moves the watermark. Re-running a cycle changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from correlator import metrics
from correlator.health import dependency_health
from correlator.machine import STUCK, Context, Event, Health, QueueInfo, Verdict, evaluate
from correlator.priority import period_close_factor, score
from correlator.stitch import Stitcher
from triage.settings import Settings, Workflow
from triage.store import Store

log = logging.getLogger("triage.correlator")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WATERMARK = "correlator"

_LOAD_WATERMARK = "SELECT Watermark FROM correlator_state FINAL WHERE Name = {name:String}"
_SAVE_WATERMARK = "INSERT INTO correlator_state (Name, Watermark) VALUES"
_AFFECTED_NEW = """
INSERT INTO correlator_affected
SELECT DISTINCT Workflow, Key FROM business_events WHERE IngestedAt >= {cycle:DateTime64(3)}
"""
_AFFECTED_DUE = """
INSERT INTO correlator_affected
SELECT Workflow, Key FROM business_transactions FINAL
WHERE State = 'in_progress' AND DueAt <= {now:DateTime64(9)}
"""
_AFFECTED_STUCK = """
INSERT INTO correlator_affected
SELECT Workflow, Key FROM business_transactions FINAL WHERE State IN ('stalled', 'blocked')
"""
_AFFECTED_RANGE = """
INSERT INTO correlator_affected
SELECT DISTINCT Workflow, Key FROM business_events WHERE At >= {start:DateTime64(9)} AND At <= {end:DateTime64(9)}
"""
_EVENTS = """
SELECT Workflow, Key, EventId, Step, At, Source, Service, TraceId, SpanKind, Status, Failure, Detail, Peer,
       Destination, MessageId, Facility, Value
FROM business_events
WHERE (Workflow, Key) IN (SELECT Workflow, Key FROM correlator_affected)
ORDER BY Workflow, Key, At
"""
_PREVIOUS = """
SELECT Workflow, Key, CauseKind, CauseComponent, Version, State FROM business_transactions FINAL
WHERE (Workflow, Key) IN (SELECT Workflow, Key FROM correlator_affected)
"""
_WINDOW_LAG = """
SELECT round(dateDiff('millisecond', TriageIngestedAt, {done:DateTime64(3)}) / 250) / 4 AS lag, count()
FROM otel_traces
WHERE TriageIngestedAt > {lo:DateTime64(3)} AND TriageIngestedAt <= {hi:DateTime64(3)}
GROUP BY lag
"""
_STATES = """
SELECT Workflow, State, Criticality, count(), sum(Value) FROM business_transactions FINAL
GROUP BY Workflow, State, Criticality
"""
_AT_RISK = """
SELECT Workflow, Facility, sum(Value) FROM business_transactions FINAL
WHERE State IN ('stalled', 'blocked', 'failed') GROUP BY Workflow, Facility
"""
_BY_CAUSE = """
SELECT Workflow, CauseKind, CauseComponent, count() FROM business_transactions FINAL
WHERE State IN ('stalled', 'blocked', 'failed') GROUP BY Workflow, CauseKind, CauseComponent
"""
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


@dataclass
class CycleResult:
    window_start: datetime
    window_end: datetime
    touched_traces: int
    events: int
    evaluated: int
    seconds: float


def utcnow() -> datetime:
    return datetime.now(UTC)


class Correlator:
    """Turns raw telemetry in the store into business transactions, one cycle at a time."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.workflows: dict[str, Workflow] = {w.name: w for w in settings.workflows}
        self.stitcher = Stitcher(store, settings)
        self._closes = [date.fromisoformat(d) for d in settings.correlation.period_close]
        self._gauge_labels: set[tuple[str, ...]] = set()
        # One cycle at a time: cycles share the scratch tables (a replay may come from the API).
        self._lock = threading.Lock()
        self._last_full = 0.0
        self._previous_hi = EPOCH

    def watermark(self) -> datetime:
        row = self.store.query(_LOAD_WATERMARK, {"name": WATERMARK}).first_row
        return row[0] if row else EPOCH

    def run_once(self, now: datetime | None = None) -> CycleResult:
        """One cycle over everything ingested since the watermark."""
        now = now or utcnow()
        conf = self.settings.correlation
        wm = self.watermark()
        lo = wm - timedelta(seconds=conf.overlap) if wm > EPOCH else EPOCH
        # The window follows the wall clock even when `now` (the time SLAs are judged at) is not.
        hi = min(now, utcnow()) - timedelta(seconds=conf.settle)
        return self._cycle(lo, hi, now, None)

    def replay(self, start: datetime, end: datetime, now: datetime | None = None) -> CycleResult:
        """Rebuild the transactions of a time range from the raw data, whatever the watermark says."""
        now = now or utcnow()
        since = start - timedelta(seconds=self.settings.correlation.lookback)
        return self._cycle(start, end, now, (start, end), since=since)

    def _cycle(
        self,
        lo: datetime,
        hi: datetime,
        now: datetime,
        replay: tuple[datetime, datetime] | None,
        since: datetime | None = None,
    ) -> CycleResult:
        started = time.perf_counter()
        since = since or now - timedelta(seconds=self.settings.correlation.lookback)
        cycle_start = self.store.command("SELECT now64(3)")
        stats = self.stitcher.run(lo, hi, since, by_event_time=replay is not None)
        s = self.store
        s.command("TRUNCATE TABLE correlator_affected")
        s.command(_AFFECTED_NEW, {"cycle": cycle_start})
        # Stuck transactions are re-judged now and then (their cause may change with dependency
        # health); open ones whose next step fell due are judged every cycle.
        if replay is not None or time.monotonic() - self._last_full >= self.settings.correlation.reevaluate:
            s.command(_AFFECTED_STUCK)
            self._last_full = time.monotonic()
        s.command(_AFFECTED_DUE, {"now": now})
        if replay is not None:
            s.command(_AFFECTED_RANGE, {"start": replay[0], "end": replay[1]})
        evaluated = self._evaluate(now)
        if replay is None:
            s.insert("correlator_state", [[WATERMARK, hi]], ["Name", "Watermark"])
            self._observe_lag(max(lo, self._previous_hi), hi)
            self._previous_hi = hi
        self._update_gauges()
        seconds = time.perf_counter() - started
        metrics.CYCLE_SECONDS.observe(seconds)
        metrics.EVENTS.inc(max(0, stats.events))
        metrics.EVALUATED.inc(evaluated)
        newest = s.command("SELECT max(TriageIngestedAt) FROM otel_traces")
        if isinstance(newest, datetime) and newest > EPOCH:
            metrics.LAG.set(max(0.0, (utcnow() - newest).total_seconds()) if newest > hi else 0.0)
        return CycleResult(lo, hi, stats.touched_traces, stats.events, evaluated, seconds)

    def _observe_lag(self, lo: datetime, hi: datetime) -> None:
        """Per span first processed in this cycle: ingested → its transaction's state written."""
        if lo <= EPOCH:
            return
        rows = self.store.query(_WINDOW_LAG, {"lo": lo, "hi": hi, "done": utcnow()}).result_rows
        for lag, count in rows:
            for _ in range(min(int(count), 100_000)):
                metrics.SPAN_LAG.observe(max(0.0, float(lag)))

    def _evaluate(self, now: datetime) -> int:
        events = self._load_events()
        if not events:
            return 0
        previous = {(r[0], r[1]): (r[2], r[3], r[5]) for r in self.store.query(_PREVIOUS).result_rows}
        health = self._health(now)
        queues = self._queues()
        version = time.time_ns()
        close = period_close_factor(now, self._closes)
        tx_rows: list[list[Any]] = []
        cause_rows: list[list[Any]] = []
        for (workflow_name, key), evs in events.items():
            workflow = self.workflows.get(workflow_name)
            if workflow is None:
                continue
            facility_id = next((e.facility for e in evs if e.facility), "")
            facility = self.settings.facility(facility_id)
            criticality = facility.criticality if facility else "normal"
            ctx = Context(
                now,
                criticality,
                health,
                queues,
                self.settings.correlation.dependency_error_rate,
                self.settings.correlation.dependency_min_errors,
            )
            verdict = evaluate(workflow, evs, ctx)
            before = previous.get((workflow_name, key))
            if (
                verdict.state in STUCK
                and verdict.due_at
                and verdict.due_at <= now
                and (before is None or before[2] not in STUCK)
            ):
                metrics.DETECTION.observe(max(0.0, (min(now, utcnow()) - verdict.due_at).total_seconds()))
            tx_rows.append(
                self._row(
                    workflow,
                    key,
                    verdict,
                    facility.name if facility else facility_id,
                    criticality,
                    now,
                    close,
                    version,
                )
            )
            cause_rows.extend(
                self._cause_rows(workflow_name, key, verdict, previous.get((workflow_name, key)), now, version)
            )
        if tx_rows:
            self.store.insert("business_transactions", tx_rows, TRANSACTION_COLUMNS)
        if cause_rows:
            self.store.insert("transaction_causes", cause_rows, CAUSE_COLUMNS)
        return len(tx_rows)

    def _load_events(self) -> dict[tuple[str, str], list[Event]]:
        out: dict[tuple[str, str], list[Event]] = {}
        seen: set[tuple[str, str, str]] = set()
        for r in self.store.query(_EVENTS).result_rows:
            ident = (r[0], r[1], r[2])
            if ident in seen:
                continue
            seen.add(ident)
            out.setdefault((r[0], r[1]), []).append(
                Event(
                    step=r[3],
                    at=r[4],
                    source=r[5],
                    service=r[6],
                    trace_id=r[7],
                    span_kind=r[8],
                    status=r[9],
                    failure=bool(r[10]),
                    detail=r[11],
                    peer=r[12],
                    destination=r[13],
                    message_id=r[14],
                    facility=r[15],
                    value=float(r[16]),
                )
            )
        return out

    def _health(self, now: datetime) -> dict[str, Health]:
        since = now - timedelta(seconds=self.settings.correlation.health_window)
        return dependency_health(self.store, since, max(now, utcnow()))

    def _queues(self) -> dict[str, QueueInfo]:
        """Current queue states by every name a span may use for them (name, queue, stream, topic)."""
        try:
            from collector.queues import current_queue_states
        except ImportError:  # queue polling not installed in this build
            return {}
        try:
            states = current_queue_states(self.store, self.settings)
        except Exception as exc:
            log.warning("event=queue_states_unavailable error=%r", exc)
            return {}
        aliases: dict[str, list[str]] = {}
        for q in self.settings.queues:
            aliases[q.name] = [n for n in (q.name, q.queue, q.stream) if n]
        out: dict[str, QueueInfo] = {}
        for state in states:
            info = QueueInfo(state.name, state.status, int(state.backlog or 0), state.oldest_age_seconds)
            names = set(aliases.get(state.name, [state.name]))
            if "/" in state.name:
                names.add(state.name.rsplit("/", 1)[1])
            for name in names:
                out[name] = info
        return out

    def _row(
        self,
        workflow: Workflow,
        key: str,
        v: Verdict,
        facility_name: str,
        criticality: str,
        now: datetime,
        close: float,
        version: int,
    ) -> list[Any]:
        step = next((s for s in workflow.steps if s.name == v.next_step), None)
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
            version,
        ]

    @staticmethod
    def _cause_rows(
        workflow: str,
        key: str,
        v: Verdict,
        previous: tuple[str, str, int] | None,
        now: datetime,
        version: int,
    ) -> list[list[Any]]:
        rows = []
        cause = v.cause if v.state in STUCK else None
        if previous and previous[0] and (cause is None or (cause.kind, cause.component) != previous[:2]):
            rows.append([workflow, key, previous[0], previous[1], "", None, "{}", now, 0, version])
        if cause is not None:
            rows.append(
                [
                    workflow,
                    key,
                    cause.kind,
                    cause.component,
                    cause.detail,
                    cause.since,
                    json.dumps(cause.evidence, default=str),
                    now,
                    1,
                    version,
                ]
            )
        return rows

    def _update_gauges(self) -> None:
        seen: set[tuple[str, ...]] = set()
        for wf, state, crit, count, _ in self.store.query(_STATES).result_rows:
            metrics.TRANSACTIONS.labels(wf, state, crit).set(count)
            seen.add(("tx", wf, state, crit))
        for wf, facility, value in self.store.query(_AT_RISK).result_rows:
            metrics.VALUE_AT_RISK.labels(wf, facility).set(value)
            seen.add(("risk", wf, facility))
        for wf, kind, component, count in self.store.query(_BY_CAUSE).result_rows:
            metrics.STUCK_BY_CAUSE.labels(wf, kind, component).set(count)
            seen.add(("cause", wf, kind, component))
        for label in self._gauge_labels - seen:
            gauge = {
                "tx": metrics.TRANSACTIONS,
                "risk": metrics.VALUE_AT_RISK,
                "cause": metrics.STUCK_BY_CAUSE,
            }
            gauge[label[0]].labels(*label[1:]).set(0)
        self._gauge_labels = seen

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every `correlation.interval` until `stop` is set; a failed cycle is logged and retried."""
        interval = self.settings.correlation.interval
        while not stop.is_set():
            began = time.monotonic()
            try:
                result = await asyncio.to_thread(self.run_once)
                if result.events or result.evaluated:
                    log.info(
                        "event=correlation_cycle traces=%d events=%d evaluated=%d seconds=%.2f",
                        result.touched_traces,
                        result.events,
                        result.evaluated,
                        result.seconds,
                    )
            except Exception:
                metrics.ERRORS.inc()
                log.exception("event=correlation_cycle_failed")
            try:
                # Cycles start every `interval`; a cycle that took longer is followed at once.
                await asyncio.wait_for(stop.wait(), timeout=max(0.05, interval - (time.monotonic() - began)))
            except TimeoutError:
                pass
