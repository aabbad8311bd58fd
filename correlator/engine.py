"""The correlation loop: watermark-driven cycles of stitching (SQL) and state evaluation (Python).

Each cycle reads what was ingested since the last watermark (and, when a sweep finds rows that became
visible late, from before it: correlator/windows.py), stitches it into business events, re-evaluates
every transaction those events touch plus every open transaction whose next step is now due, writes
the new states
(ReplacingMergeTree by Version) and moves the watermark. Re-running a cycle changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from correlator import gauges, metrics
from correlator.columnar import FlowPlan, judge
from correlator.forecast import Forecast, Forecaster
from correlator.health import dependency_health
from correlator.machine import Context, Event, Health, Verdict
from correlator.priority import period_close_factor
from correlator.queues import queue_infos
from correlator.stitch import Stitcher
from correlator.transactions import CAUSE_COLUMNS, TRANSACTION_COLUMNS
from correlator.verdicts import cause_rows, transaction_row
from correlator.windows import ReadWindows, to_millisecond
from correlator.worklist import Worklist
from triage.health import TaskHealth
from triage.metrics import observe_many
from triage.settings import Facility, Settings, Shard, Workflow
from triage.store import Store
from triage.vocabulary import STUCK, Criticality, State

log = logging.getLogger("triage.correlator")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WATERMARK = "correlator"
LATE_AFTER = 30.0  # seconds: SDK and collector batching stay well below; a backlog or a backfill does not

_LOAD_WATERMARK = "SELECT Watermark FROM correlator_state FINAL WHERE Name = {name:String}"
# Watermarks of the correlators of other shard layouts (a shard's peers own other keys: never theirs).
_EARLIEST_WATERMARK = """
SELECT min(Watermark), count() FROM correlator_state FINAL
WHERE (Name = {prefix:String} OR startsWith(Name, concat({prefix:String}, '/'))) AND NOT endsWith(Name, {layout:String})
"""
_WINDOW_LAG = """
SELECT round(dateDiff('millisecond', TriageIngestedAt, {done:DateTime64(3)}) / 250) / 4 AS lag, count()
FROM otel_traces
WHERE TriageIngestedAt > {lo:DateTime64(3)} AND TriageIngestedAt <= {hi:DateTime64(3)}
GROUP BY lag
"""


@dataclass
class CycleResult:
    window_start: datetime
    window_end: datetime
    touched_traces: int
    events: int
    evaluated: int
    seconds: float
    held: int = 0  # overdue transactions not yet called stuck: late telemetry of them was arriving


def utcnow() -> datetime:
    return datetime.now(UTC)


def _check(may_write: Callable[[], bool] | None) -> None:
    if may_write is not None and not may_write():
        raise LeaseLost("the shard's lease lapsed during the cycle; its verdicts were not written")


def _hold_while_catching_up(verdict: Verdict, events: list[Event], arrived_after: datetime, late: timedelta) -> Verdict:
    """A transaction found overdue while late telemetry of it is arriving (since the last cycle the store
    got events of it stamped `late` or more before they arrived, all from before its due time: a backlog
    catching up, a backfill, a collector replaying its buffer) is not called stuck yet: the rest may
    show it moved on. It stays due, so the next cycle judges it again; once nothing late arrives it is
    judged on what there is. Telemetry on time is judged at once."""
    if not verdict.overdue or verdict.due_at is None:
        return verdict
    fresh = [e for e in events if e.received is not None and e.received > arrived_after]
    if not fresh or any(e.at >= verdict.due_at for e in fresh):
        return verdict
    if not any(e.received is not None and e.received - e.at >= late for e in fresh):
        return verdict
    return replace(verdict, state=State.IN_PROGRESS, cause=None, overdue=False)


class _OnFirstUse(Mapping[str, Health]):
    """Dependency health read from the store when a verdict first asks for it: only an overdue transaction
    does, and most cycles judge none, so most cycles skip the scan of recent spans."""

    def __init__(self, load: Callable[[], dict[str, Health]]) -> None:
        self._load = load
        self._health: dict[str, Health] | None = None

    def _loaded(self) -> dict[str, Health]:
        if self._health is None:
            self._health = self._load()
        return self._health

    def __getitem__(self, service: str) -> Health:
        return self._loaded()[service]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


class LeaseLost(Exception):
    """A cycle was abandoned before writing verdicts: its worker no longer holds the shard's lease."""


def scratch_suffix(shard: Shard, purpose: str = "") -> str:
    """How a correlator's scratch tables are told apart: none for the single correlator (1/1), the shard
    for one of several (`_2of4`), the purpose for one of its own (`_replay`)."""
    if purpose:
        return f"_{purpose}"
    return "" if shard.count == 1 else f"_{shard.index}of{shard.count}"


class Correlator:
    """Turns raw telemetry in the store into business transactions, one cycle at a time.

    A correlator owns one shard of the transactions (`shard`, by a hash of workflow and key; 1/1 owns
    them all): it stitches and judges only those, keeps its own watermark and its own scratch tables.
    `scratch` names scratch tables of its own for a correlator beside the shard's (a replay from the API).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        shard: Shard | None = None,
        scratch: str = "",
        forecaster: Forecaster | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.shard = shard or Shard()
        self.workflows: dict[str, Workflow] = {w.name: w for w in settings.workflows}
        self._plans = {w.name: FlowPlan.of(w) for w in settings.workflows}
        suffix = scratch_suffix(self.shard, scratch)
        self._scratch = {"correlator_touched": f"correlator_touched{suffix}"}
        self._scratch["correlator_affected"] = f"correlator_affected{suffix}"
        self._scratch["correlator_keyed"] = f"correlator_keyed{suffix}"
        self._scratch["correlator_ids"] = f"correlator_ids{suffix}"
        self._scratch_ready = not suffix
        self.stitcher = Stitcher(
            store,
            settings,
            self.shard,
            self._scratch["correlator_touched"],
            self._scratch["correlator_keyed"],
            self._scratch["correlator_ids"],
        )
        self.worklist = Worklist(store, self.shard, self._scratch["correlator_affected"])
        self.watermark_name = WATERMARK if self.shard.count == 1 else f"{WATERMARK}/{self.shard.name}"
        # Only one correlator exports the store-wide figures (span lag, business gauges): the first shard's.
        self._reports_store = self.shard.index == 1
        self._gauges_at: float | None = None  # when the business gauges were last recomputed (monotonic)
        self._closes = [date.fromisoformat(d) for d in settings.correlation.period_close]
        # One cycle at a time: cycles share the scratch tables (a replay may come from the API).
        self._lock = threading.Lock()
        self._last_full = 0.0
        self._last_full_now: datetime | None = None  # the judging clock at the last re-judgement of stuck work
        self.health = TaskHealth("correlator")
        # Telemetry stored this much after its own time is late, not merely batched on its way.
        self._late_after = timedelta(seconds=LATE_AFTER)
        self._conditions_on_attributes = any(
            s.when is not None and s.when.attributes for w in settings.workflows for s in w.steps
        )
        self._previous_hi = EPOCH
        self.windows = ReadWindows(store, settings.correlation.overlap)
        # The history of waits is the store's, not a shard's: a worker's shards share one reader of it.
        self.forecaster = forecaster or Forecaster(store, settings)

    def watermark(self) -> datetime:
        """Where this shard's correlation stands. A shard new to the store after the shards were changed
        starts where the slowest correlator of another layout stood: every key was stitched up to there, and
        what fell due since is found in the business tables. Its peers' watermarks say nothing of its keys."""
        row = self.store.query(_LOAD_WATERMARK, {"name": self.watermark_name}).first_row
        if row:
            return row[0]
        layout = f"/{self.shard.count}"  # correlator/<i>/<n>; 1/1 is named `correlator`, so no name ends in /1
        row = self.store.query(_EARLIEST_WATERMARK, {"prefix": WATERMARK, "layout": layout}).first_row
        return row[0] if row and row[1] else EPOCH

    def _prepare_scratch(self) -> None:
        if self._scratch_ready:
            return
        for base, own in self._scratch.items():
            # Node-local, like the tables they copy (a correlator talks to one ClickHouse node).
            self.store.command(f"CREATE TABLE IF NOT EXISTS {own} AS {base}")
        self._scratch_ready = True

    def run_once(self, now: datetime | None = None, may_write: Callable[[], bool] | None = None) -> CycleResult:
        """One cycle over everything ingested since the watermark. With `may_write` (a lease's `held`), the
        cycle writes verdicts and moves the watermark only while it says yes, else raises LeaseLost."""
        now = now or utcnow()
        conf = self.settings.correlation
        wm = self.watermark()
        # The window follows the wall clock even when `now` (the time SLAs are judged at) is not.
        hi = to_millisecond(min(now, utcnow()) - timedelta(seconds=conf.settle))
        lo = self.windows.start(wm, hi)
        result = self._cycle(lo, hi, now, None, arrived_after=wm, may_write=may_write)
        self.windows.done()
        return result

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
        arrived_after: datetime | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> CycleResult:
        with self._lock:
            return self._locked_cycle(lo, hi, now, replay, since, arrived_after, may_write)

    def _locked_cycle(
        self,
        lo: datetime,
        hi: datetime,
        now: datetime,
        replay: tuple[datetime, datetime] | None,
        since: datetime | None,
        arrived_after: datetime | None,
        may_write: Callable[[], bool] | None,
    ) -> CycleResult:
        started = time.perf_counter()
        self._prepare_scratch()
        since = since or now - timedelta(seconds=self.settings.correlation.lookback)
        cycle_start: datetime = self.store.query("SELECT now64(3)").result_rows[0][0]
        stats = self.stitcher.run(lo, hi, since, by_event_time=replay is not None)
        s = self.store
        # Stuck transactions are re-judged now and then (their cause may change with dependency health, their
        # priority with how long they have been stuck); open ones whose next step fell due are judged every
        # cycle. "Now and then" is every `reevaluate` seconds of the wall clock or of the judging clock, which
        # is the same in a server: a cycle judged at a later `now` (a test, a replay's clock) re-judges them,
        # or their priorities would be of another time than those judged beside them.
        every = self.settings.correlation.reevaluate
        rejudge = (
            replay is not None
            or time.monotonic() - self._last_full >= every
            or (self._last_full_now is not None and (now - self._last_full_now).total_seconds() >= every)
        )
        if rejudge:
            self._last_full, self._last_full_now = time.monotonic(), now
        # A step that stopped (or moved again) changes the forecast of everything waiting after it.
        self.forecaster.refresh(now)
        moved = self.forecaster.changed()
        self.worklist.collect(cycle_start, now, rejudge_stuck=rejudge, replay=replay, waiting_after=moved)
        # What arrived after the last cycle's window is new to this one (a replay holds nothing back).
        evaluated, held = self._evaluate(now, arrived_after, may_write)
        if replay is None:
            _check(may_write)
            s.insert("correlator_state", [[self.watermark_name, hi]], ["Name", "Watermark"])
            if self._reports_store:
                self._observe_lag(max(lo, self._previous_hi), hi)
            self._previous_hi = hi
        if self._reports_store and (
            self._gauges_at is None or time.monotonic() - self._gauges_at >= self.settings.correlation.gauges_every
        ):
            gauges.refresh(s, utcnow())
            self._gauges_at = time.monotonic()
        seconds = time.perf_counter() - started
        metrics.CYCLE_SECONDS.observe(seconds)
        metrics.EVENTS.inc(max(0, stats.events))
        metrics.EVALUATED.inc(evaluated)
        newest = s.command("SELECT max(TriageIngestedAt) FROM otel_traces")
        if isinstance(newest, datetime) and newest > EPOCH:
            metrics.LAG.set(max(0.0, (utcnow() - newest).total_seconds()) if newest > hi else 0.0)
        return CycleResult(lo, hi, stats.touched_traces, stats.events, evaluated, seconds, held)

    def _observe_lag(self, lo: datetime, hi: datetime) -> None:
        """Per span first processed in this cycle: ingested → its transaction's state written."""
        if lo <= EPOCH:
            return
        rows = self.store.query(_WINDOW_LAG, {"lo": lo, "hi": hi, "done": utcnow()}).result_rows
        for lag, count in rows:
            observe_many(metrics.SPAN_LAG, max(0.0, float(lag)), int(count))

    def _evaluate(
        self, now: datetime, arrived_after: datetime | None, may_write: Callable[[], bool] | None
    ) -> tuple[int, int]:
        """Judge the worklist; how many were judged, and how many of them were held (late data)."""
        cols = self.worklist.load_columns(attributes=self._conditions_on_attributes)
        if not len(cols):
            return 0, 0
        held = judged = 0
        previous = self.worklist.previous_verdicts()
        health = _OnFirstUse(lambda: self._health(now))
        queues = queue_infos(self.store, self.settings)
        version = time.time_ns()
        close = period_close_factor(now, self._closes)
        conf = self.settings.correlation
        contexts = {
            c: Context(now, c, health, queues, conf.dependency_error_rate, conf.dependency_min_errors)
            for c in Criticality
        }
        facilities: dict[str, Facility] = {}
        for f in self.settings.facilities:
            facilities.setdefault(f.id, f)  # the first of an id, as Settings.facility finds it
        tx_rows: list[list[Any]] = []
        causes: list[list[Any]] = []
        for workflow_name, key, lo, hi in cols.transactions():
            plan = self._plans.get(workflow_name)
            if plan is None:
                continue
            facility_id = next((f for f in cols.facility[lo:hi] if f), "")
            facility = facilities.get(facility_id)
            criticality = facility.criticality if facility else Criticality.NORMAL
            verdict = judge(plan, cols, lo, hi, contexts[criticality])
            stored = previous.get((workflow_name, key))
            before = stored.cause_and_state if stored is not None else None
            if stored is not None and verdict.current_step != stored.current_step and stored.current_step:
                self.forecaster.exited(workflow_name, stored.current_step, verdict.waiting_since or now)
            if verdict.overdue and arrived_after is not None and (before is None or before[2] not in STUCK):
                as_judged = verdict
                verdict = _hold_while_catching_up(verdict, cols.events(lo, hi), arrived_after, self._late_after)
                held += verdict is not as_judged
            if (
                verdict.state in STUCK
                and verdict.due_at
                and verdict.due_at <= now
                and (before is None or before[2] not in STUCK)
            ):
                metrics.DETECTION.observe(max(0.0, (min(now, utcnow()) - verdict.due_at).total_seconds()))
            row = transaction_row(
                plan.workflow,
                key,
                verdict,
                facility.name if facility else facility_id,
                criticality,
                now,
                close,
                version,
                self._forecast(plan.workflow, verdict, facility_id, criticality),
                plan.sla(verdict.next_step, criticality),
            )
            judged += 1
            # A verdict the store already holds is not written again: re-judging what did not change (a
            # re-read overlap, a due time checked) costs a read, not a new version of every row.
            if stored is not None and stored.same_as(row):
                continue
            tx_rows.append(row)
            if before is not None or verdict.state in STUCK:
                causes.extend(cause_rows(workflow_name, key, verdict, before, now, version))
        _check(may_write)
        if tx_rows:
            self.store.insert("business_transactions", tx_rows, TRANSACTION_COLUMNS)
        if causes:
            self.store.insert("transaction_causes", causes, CAUSE_COLUMNS)
        metrics.UNCHANGED.inc(judged - len(tx_rows))
        return judged, held

    def _forecast(self, workflow: Workflow, verdict: Verdict, facility: str, criticality: str) -> Forecast | None:
        """The breach forecast of a transaction still in flight (correlator/forecast.py)."""
        if verdict.state in (State.COMPLETED, State.FAILED) or verdict.waiting_since is None:
            return None
        # The SLA the machine judges by (between alternatives, the longest): from the wait's start to due.
        sla = (verdict.due_at - verdict.waiting_since).total_seconds() if verdict.due_at else None
        return self.forecaster.forecast(
            workflow.name, verdict.current_step, facility, criticality, verdict.waiting_since, sla
        )

    def _health(self, now: datetime) -> dict[str, Health]:
        since = now - timedelta(seconds=self.settings.correlation.health_window)
        return dependency_health(self.store, since, max(now, utcnow()))
