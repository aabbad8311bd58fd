"""Breach forecasts: from how long each step's wait took before, when an in-flight transaction should
move on and from when it is at risk of missing its SLA.

A wait runs from a transaction's last progress event (the step it is at, as the state machine reads it)
to its next progress event of another step: the same clock the SLA runs on. The correlator reads the
waits of the store's recent history in one query (quantiles per workflow, step, criticality and
facility) at most once per `correlation.forecast.refresh`, and forecasts each transaction it judges from
the narrowest basis with enough waits: its facility, else its criticality, else the workflow step.

The rule (docs/correlation.md, "Breach forecasts"): with F the share of past waits that ended within a
duration, a transaction still waiting after t makes an SLA s with probability (F(s) - F(t)) / (1 - F(t)).
It is at risk from the first t at which that falls to 1 - risk_share, which is
t* = F⁻¹((F(s) - (1 - risk_share)) / risk_share): with risk_share 1 it is the issue's "its elapsed time
exceeds the share of history that finished within the SLA". A flag needs `min_evidence` past waits that
missed the SLA: past the slowest of waits that all made it, history says nothing either way. A wait that
has not ended is in the history once its transaction is overdue (past the SLA it was judged by), as
lasting until now: it did not end within the SLA, and for every duration up to the SLA that is all F needs
to know. Without them the waits that never end (an approver away for good, a message lost) would leave
F(s) optimistic and the risk time late. Waits still within their SLA are left out until they end or go
overdue: their outcome is unknown.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from correlator import metrics
from triage.durations import format_duration
from triage.settings import Settings
from triage.store import Store
from triage.vocabulary import REJUDGED, Criticality, State, names

log = logging.getLogger("triage.correlator")
LEVELS = tuple(i / 100 for i in range(101))  # the quantiles kept per basis: 0, 0.01, ..., 1
# Aggregate-function parameters must be literals: the levels are our own constant, formatted in. The kept
# quantiles are waits that happened (quantilesExactLow: the one at index level × n), not points interpolated
# between two: where the waits that made the SLA end at 14 minutes and those that missed it begin at 40, the
# interpolation only spans one level (1%), so a wait is at risk just past 14 minutes, not halfway to 40.
_WAITS = """
SELECT Workflow, FromStep, Criticality, Facility, grouping(Criticality, Facility) AS coarse, count() AS n,
       quantilesExactLow(__LEVELS__)(Seconds) AS q
FROM (
    SELECT Workflow, steps[i - 1].2 AS FromStep, Facility,
           transform(Facility, {facilities:Array(String)}, {tiers:Array(String)}, {default_tier:String})
               AS Criticality,
           (if(i <= length(steps), toUnixTimestamp64Nano(steps[i].1), toUnixTimestamp64Nano({now:DateTime64(9)}))
               - toUnixTimestamp64Nano(steps[i - 1].1)) / 1e9 AS Seconds
    FROM (
        SELECT Workflow, Key, anyIf(Facility, Facility != '') AS Facility,
               arraySort(e -> e.1, groupArray((At, Step))) AS steps,
               (Workflow, Key) IN (
                   SELECT Workflow, Key FROM business_transactions FINAL
                   WHERE State IN {open:Array(String)} AND DueAt < {now:DateTime64(9)}
               ) AS overdue
        FROM business_events FINAL
        WHERE Step != '' AND Status = 'ok' AND Failure = 0 AND At >= {since:DateTime64(9)}
        GROUP BY Workflow, Key
    )
    -- every wait that ended (a step after another), and the wait of a transaction overdue now
    ARRAY JOIN arrayFilter(
        i -> (i > 1 AND i <= length(steps) AND steps[i].2 != steps[i - 1].2) OR (i = length(steps) + 1 AND overdue),
        range(1, length(steps) + 2)
    ) AS i
)
GROUP BY GROUPING SETS ((Workflow, FromStep, Criticality, Facility), (Workflow, FromStep, Criticality),
                        (Workflow, FromStep))
"""
# Stoppages: per workflow step, every wait after it that ended, in the order they ended, with its gap (how long
# nobody left the step while someone waited: from the previous exit, or from when the first of the waits that
# leave next began, whichever is later; a stoppage's backlog drains in any order within DRAIN exits), and every
# open wait there. A step whose gap now is longer than usual while HELD or more wait there is stopped; its
# earlier stoppages are the gaps longer than usual that held as many (the exit after the gap's had begun waiting
# before it ended: one slow transaction alone is not a stopped step). Usual is up to Tukey's far-out fence of the
# gaps that held as many (a lone transaction's wait says nothing of a step's flow): the
# third quartile plus `stoppage_fence` (3) times the interquartile range, which stoppages taking up to a quarter
# of the gaps do not move (for exponential gaps, a steady flow's, it is 4.7 times the mean gap, passed by 1% of
# them). Waiters that went overdue while the step was still moving (a message lost, a transaction forgotten)
# are their own trouble, not the step's: left out.
_GAPS = """
SELECT Workflow, FromStep, countIf(NOT open AND Held) AS n, max(End) AS last_exit,
       minIf(Start, open AND (DueAt >= LastExit OR State = {in_progress:String})) AS first_waiter,
       countIf(open AND (DueAt >= LastExit OR State = {in_progress:String})) AS waiters,
       quantilesExactInclusiveIf(0.25, 0.75)(Gap, NOT open AND Held) AS quartiles,
       quartiles[2] + {fence:Float64} * (quartiles[2] - quartiles[1]) AS usual,
       arraySort(x -> x.1, arrayMap(x -> (x.1, x.2), arrayFilter(x -> x.1 > usual AND x.3,
           groupArrayIf((Gap, GapHi, Held), NOT open)))) AS longer,
       greatest(max(Start), max(End)) AS newest
FROM (
    SELECT Workflow, FromStep, Start, End, open, State, DueAt, (toUnixTimestamp64Nano(End) - PrevEnd) / 1e9 AS GapHi,
           leadInFrame(toUnixTimestamp64Nano(Start), {held:UInt8}, toInt64(9e18)) OVER (PARTITION BY Workflow, FromStep,
               open ORDER BY End ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) < toUnixTimestamp64Nano(End) AS Held,
           max(if(open, toDateTime64(0, 9), End)) OVER (PARTITION BY Workflow, FromStep) AS LastExit,
           lagInFrame(toUnixTimestamp64Nano(End), 1, toUnixTimestamp64Nano({since:DateTime64(9)})) OVER (
               PARTITION BY Workflow, FromStep, open ORDER BY End ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS PrevEnd,
           (toUnixTimestamp64Nano(End) - greatest(
               min(toUnixTimestamp64Nano(Start)) OVER (PARTITION BY Workflow, FromStep, open ORDER BY End
                   ROWS BETWEEN CURRENT ROW AND {drain:UInt16} FOLLOWING), PrevEnd)) / 1e9 AS Gap
    FROM (
        SELECT Workflow, steps[i - 1].2 AS FromStep, steps[i - 1].1 AS Start, i > length(steps) AS open,
               if(open, toDateTime64(0, 9), steps[i].1) AS End, State, DueAt
        FROM (
            SELECT e.Workflow AS Workflow, e.Key AS Key, e.steps AS steps, t.State AS State, t.DueAt AS DueAt
            FROM (
                SELECT Workflow, Key, arraySort(x -> x.1, groupArray((At, Step))) AS steps
                FROM business_events FINAL
                WHERE Step != '' AND Status = 'ok' AND Failure = 0 AND At >= {since:DateTime64(9)}
                GROUP BY Workflow, Key
            ) AS e
            LEFT JOIN (
                SELECT Workflow, Key, State, DueAt FROM business_transactions FINAL WHERE State IN {open:Array(String)}
            ) AS t ON e.Workflow = t.Workflow AND e.Key = t.Key
        )
        ARRAY JOIN arrayFilter(
            i -> (i > 1 AND i <= length(steps) AND steps[i].2 != steps[i - 1].2)
                 OR (i = length(steps) + 1 AND State != ''),
            range(1, length(steps) + 2)
        ) AS i
    )
)
GROUP BY Workflow, FromStep
"""
_OPEN = (State.IN_PROGRESS, *REJUDGED)  # still waiting for their next step
# The history read takes at most this share of the time between reads: over a large store it takes longer than
# `refresh` (40 s over 10.9M transactions, bench/forecast.py), and reading back to back would keep a core busy.
READ_SHARE = 0.2
# Transactions a stoppage holds at least (the one whose exit ends it among them). Two let chance pass for one:
# in the demo's sparse history two transactions waited out the same stopped consumer in 12% of its stops.
HELD = 4
DRAIN = 10  # the exits after a stoppage among which the longest held leaves
# grouping(Criticality, Facility): 0 both grouped, 1 facility rolled up, 3 both rolled up.
_LEVEL = {0: "facility", 1: "criticality", 3: "step"}


@dataclass(frozen=True)
class Waits:
    """How long past waits after one step took on one basis: their number and quantiles at LEVELS."""

    basis: str  # "facility STM-ICU", "criticality critical", "workflow step"
    samples: int
    quantiles: tuple[float, ...]  # seconds

    def share_within(self, seconds: float) -> float:
        """The share of the waits that ended within `seconds` (interpolated between the kept quantiles)."""
        q = self.quantiles
        if seconds < q[0]:
            return 0.0
        if seconds >= q[-1]:
            return 1.0
        i = bisect.bisect_right(q, seconds)  # q[i - 1] <= seconds < q[i]
        lo, hi = q[i - 1], q[i]
        part = (seconds - lo) / (hi - lo) if hi > lo else 0.0
        return LEVELS[i - 1] + part * (LEVELS[i] - LEVELS[i - 1])

    def quantile(self, level: float) -> float:
        """The wait that this share of past waits ended within (interpolated)."""
        level = min(1.0, max(0.0, level))
        position = level * (len(LEVELS) - 1)
        i = int(position)
        if i >= len(LEVELS) - 1:
            return self.quantiles[-1]
        return self.quantiles[i] + (position - i) * (self.quantiles[i + 1] - self.quantiles[i])


@dataclass(frozen=True)
class Forecast:
    """A transaction's forecast, as business_transactions keeps it."""

    next_step_eta: datetime
    risk_at: datetime | None  # None: its next step has no SLA
    basis: str


@dataclass(frozen=True)
class StepFlow:
    """How transactions leave one workflow step: its usual gap, its earlier stoppages, where it stands now."""

    usual: float  # seconds: the longest usual gap (the far-out fence of its gaps)
    # How long its earlier stoppages lasted (gaps over usual), sorted: at least from when the first transaction
    # it held began waiting, at most from the exit before it (sparse traffic leaves a wide span between).
    stoppages: tuple[Stoppage, ...]
    since: datetime | None  # since when nobody has left it while transactions wait there (None: nobody waits)
    known_until: datetime  # the read's now, or its workflow's newest progress event if that is older


Stoppage = tuple[float, float]  # seconds: how long an earlier stoppage lasted, at least and at most


def outlasting(stoppages: Sequence[Stoppage], t: float) -> float:
    """How many of the earlier stoppages lasted longer than `t` seconds: each began between the last exit
    before it (at most) and when the first of those it held began waiting (at least), at any time in between
    alike, so one that may or may not have lasted that long counts in part."""
    n = 0.0
    for lo, hi in stoppages:
        if t < lo:
            n += 1.0
        elif t < hi:
            n += (hi - t) / (hi - lo)
    return n


def stoppage_risk(
    stoppages: Sequence[Stoppage], age: float, left: float, risk_share: float, min_evidence: int
) -> float:
    """How old a stoppage is when a transaction stuck behind it becomes at risk of missing its SLA `left`
    seconds after the stoppage began (module docstring: stopped steps), at least its `age` now: the first age
    `a` at which at most 1 - risk_share of the stoppages that outlasted `a` ended by `left`; `left` (not
    before its SLA passes) unless `min_evidence` earlier stoppages or more outlasted it."""
    missed = outlasting(stoppages, left)
    if missed < min_evidence - 1e-9 or age >= left:
        return left  # nothing says a stoppage this long would not end in time (or its SLA has passed)
    # At risk once outlasting(a) <= missed / risk_share.
    return outlasted_by(stoppages, age, left, missed / risk_share + 1e-9)


def outlasted_by(stoppages: Sequence[Stoppage], age: float, until: float, share: float) -> float:
    """The first age from `age` on at which no more than `share` earlier stoppages outlasted it (`until` at
    most): outlasting falls as the age grows, linearly between the stoppages' bounds, so it is found on the
    piece where it crosses `share`."""
    if outlasting(stoppages, age) <= share:
        return age
    if age >= until:
        return until
    bounds = sorted({age, until, *(b for lo, hi in stoppages for b in (lo, hi) if age < b < until)})
    for a, b in itertools.pairwise(bounds):
        at_a = outlasting(stoppages, a)
        slope = sum(1.0 / (hi - lo) for lo, hi in stoppages if lo <= a and b <= hi and hi > lo)
        if slope > 0 and at_a - slope * (b - a) <= share:
            return a + (at_a - share) / slope
        if outlasting(stoppages, b) <= share:
            return b
    return until


def risk_after(waits: Waits, sla: float, risk_share: float, min_evidence: int) -> float:
    """How long into its wait a transaction becomes at risk of missing `sla` (module docstring: t*); `sla`
    (not before it passes) unless `min_evidence` past waits or more missed it."""
    made = waits.share_within(sla)
    # The waits past the SLA; interpolating between kept quantiles splits at most one of them: count it whole.
    if math.ceil(waits.samples * (1.0 - made) - 1e-6) < min_evidence:
        return sla
    level = (made - (1.0 - risk_share)) / risk_share
    return 0.0 if level <= 0 else min(sla, waits.quantile(level))


class Forecaster:
    """The correlator's cache of past waits, read again at most once per `refresh` seconds."""

    def __init__(self, store: Store, settings: Settings, *, background: bool = False) -> None:
        self.store = store
        self.settings = settings
        self.conf = settings.correlation.forecast
        # Read the history beside the cycles once one read has landed (a server's correlation loop): over a
        # store of a million transactions the read takes 1.5 s (bench/forecast.py), which a cycle due every
        # fraction of a second must not wait for. Replays and tests read in the cycle, to judge by it at once.
        self.background = background
        self.background_closed = False
        self._waits: dict[tuple[str, ...], Waits] = {}
        self._flows: dict[tuple[str, str], StepFlow] = {}
        # The newest exit judged from each step since the history read in use began (when it was judged, on the
        # monotonic clock): a read finds in the store every exit judged before it began and forgets those, but
        # not those judged while it ran. (An exit's time is its transaction's newest step's, which may be later
        # than when it left: kept past the reads that saw it, it would end every later stoppage of the step.)
        self._exits: dict[tuple[str, str], tuple[datetime, float]] = {}
        self._stopped: set[tuple[str, str]] = set()  # the steps stopped when changed() last looked
        self._read_at: float | None = None
        self._loaded = False  # a read has landed
        self._took = 0.0  # seconds the last read took
        self._reading: threading.Thread | None = None
        self._lock = threading.Lock()

    def refresh(self, now: datetime, force: bool = False) -> None:
        """Read the waits of the history before `now` unless they were read less than `refresh` ago (or one
        is being read); in the background once a read has landed, when the forecaster reads in the background.
        `force` reads now, in the caller's thread, after any read under way."""
        if not self.conf.enabled:
            return
        if self._reading is not None and self._reading.is_alive():
            if not force:
                return
            self._reading.join()
        # In the background a read may start as soon as the last has landed: at most READ_SHARE of the time.
        every = max(self.conf.refresh, self._took / READ_SHARE) if self.background else self.conf.refresh
        if not force and self._read_at is not None and time.monotonic() - self._read_at < every:
            return
        self._read_at = time.monotonic()  # a failed read is retried after `refresh` too
        if self.background and self._loaded and not force:
            if self.background_closed:
                return
            self._reading = threading.Thread(target=self._read, args=(now,), name="forecast-history", daemon=True)
            self._reading.start()
        else:
            self._read(now)

    def join(self, timeout: float | None = None) -> None:
        """Wait for a history read under way, if any."""
        if self._reading is not None:
            self._reading.join(timeout)

    def close(self) -> None:
        """Start no more background reads and wait for the one under way: the store is closing (a cycle still
        running on its thread keeps forecasting from the last read)."""
        self.background_closed = True
        self.join()

    def statements(self, now: datetime) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
        """The history read's two statements and their parameters: the waits' quantiles, the steps' gaps."""
        facilities = self.settings.facilities
        since, open_states = now - timedelta(seconds=self.conf.history), names(_OPEN)
        waits = {
            "since": since,
            "facilities": [f.id for f in facilities],
            "tiers": [str(f.criticality) for f in facilities],
            "default_tier": str(Criticality.NORMAL),  # an unknown facility's, as the correlator judges it
            "now": now,
            "open": open_states,
        }
        gaps = {
            "since": since,
            "open": open_states,
            "in_progress": str(State.IN_PROGRESS),
            "fence": self.conf.stoppage_fence,
            "held": HELD - 1,
            "drain": DRAIN,
        }
        return (_WAITS.replace("__LEVELS__", ", ".join(f"{x:g}" for x in LEVELS)), waits), (_GAPS, gaps)

    def _read(self, now: datetime) -> None:
        """Read the waits and the steps' gaps of the history before `now` and put them in use."""
        (waits_sql, waits_params), (gaps_sql, gaps_params) = self.statements(now)
        started, began = time.perf_counter(), time.monotonic()
        try:
            rows = self.store.query(waits_sql, waits_params).result_rows
            flow_rows = self.store.query(gaps_sql, gaps_params).result_rows
        except Exception as exc:  # forecasts are extra: judging states must go on without them
            log.error("event=forecast_history_failed keeping=last_read error=%r", exc)
            return
        finally:
            self._took = time.perf_counter() - started
            metrics.FORECAST_READ_SECONDS.observe(self._took)
            if self.background and self._took / READ_SHARE > self.conf.refresh:
                log.warning(
                    "event=forecast_history_slow seconds=%.1f next_read_after=%.0fs refresh=%.0fs "
                    "hint='the history read outgrows correlation.forecast.refresh: forecasts are read that much "
                    "less often; a shorter correlation.forecast.history reads less'",
                    self._took,
                    self._took / READ_SHARE,
                    self.conf.refresh,
                )
        flows: dict[tuple[str, str], StepFlow] = {}
        # How far each workflow's progress is known: a step of it stops only that far. Telemetry that lags (a
        # collector catching up, a correlator judging a backlog) is no stoppage: every step of it looks still.
        seen: dict[str, datetime] = {}
        for row in flow_rows:
            seen[row[0]] = max(row[-1], seen.get(row[0], row[-1]))
        for workflow, step, exits, last_exit, first_waiter, waiters, _, usual, longer, _ in flow_rows:
            since = None
            if int(waiters) >= HELD:
                since = max(last_exit, first_waiter)
            usual = float(usual) if int(exits) else 0.0
            stops = tuple((float(lo), float(hi)) for lo, hi in longer)
            flows[(workflow, step)] = StepFlow(usual, stops, since, min(now, seen[workflow]))
        self._flows = flows
        with self._lock:  # the cycle's thread records exits while a background read lands
            self._exits = {k: v for k, v in self._exits.items() if v[1] >= began}
        waits: dict[tuple[str, ...], Waits] = {}
        for workflow, step, criticality, facility, coarse, n, q in rows:
            level = _LEVEL[int(coarse)]
            basis = {"facility": f"facility {facility or '(none)'}", "criticality": f"criticality {criticality}"}
            key = {"facility": (facility,), "criticality": (criticality,), "step": ()}[level]
            waits[(workflow, step, level, *key)] = Waits(basis.get(level, "workflow step"), int(n), tuple(q))
        self._waits = waits
        self._loaded = True

    def stoppage(self, workflow: str, step: str) -> tuple[datetime, StepFlow] | None:
        """Since when `step` has been stopped, and its flow, or None when it moves (or its history has fewer
        than `min_stoppages` earlier stoppages to tell how long one lasts). Told by the last history read: a
        step is stopped once that read found nobody had left it for longer than usual while some waited, and
        no exit after that began was judged since."""
        flow = self._flows.get((workflow, step))
        if flow is None or flow.since is None:
            return None
        exit_at = self._exits.get((workflow, step))
        if exit_at is not None and exit_at[0] > flow.since:  # an exit from before it began does not end it
            return None
        if len(flow.stoppages) < self.conf.min_stoppages:
            return None
        if (flow.known_until - flow.since).total_seconds() <= max(flow.usual, self.conf.stoppage_after):
            return None
        return flow.since, flow

    def exited(self, workflow: str, step: str, at: datetime) -> None:
        """A judged transaction has left `step` (at about `at`): the step moves."""
        with self._lock:
            before = self._exits.get((workflow, step))
            self._exits[(workflow, step)] = (max(at, before[0]) if before else at, time.monotonic())

    def changed(self) -> list[tuple[str, str]]:
        """The steps that stopped or moved again since the last call: their waiters need judging again."""
        now = {k for k in self._flows if self.stoppage(*k) is not None}
        changed = sorted(now ^ self._stopped)
        for workflow, step in changed:
            flow = self._flows[(workflow, step)]
            state = "stopped" if (workflow, step) in now else "moving"
            log.info(
                "event=step_%s workflow=%s step=%s since=%s earlier=%d",
                state,
                workflow,
                step,
                flow.since,
                len(flow.stoppages),
            )
        self._stopped = now
        return changed

    def waits(self, workflow: str, step: str, facility: str, criticality: str) -> Waits | None:
        """The narrowest basis with at least `min_samples` waits after `step`, or None."""
        for key in (("facility", facility), ("criticality", criticality), ("step",)):
            found = self._waits.get((workflow, step, *key))
            if found is not None and found.samples >= self.conf.min_samples:
                return found
        return None

    def forecast(
        self,
        workflow: str,
        step: str,
        facility: str,
        criticality: str,
        waiting_since: datetime,
        sla: float | None,
    ) -> Forecast | None:
        """The forecast of a transaction waiting after `step` since `waiting_since`, or None without history."""
        if not self.conf.enabled or not step:
            return None
        stopped = self.stoppage(workflow, step)
        from_waits = self._from_waits(workflow, step, facility, criticality, waiting_since, sla)
        if stopped is None:
            return from_waits
        behind = self._behind_stoppage(step, *stopped, waiting_since, sla)
        if behind.risk_at is None or from_waits is None or from_waits.risk_at is None:
            return behind
        due = waiting_since + timedelta(seconds=sla or 0)
        if behind.risk_at >= due > from_waits.risk_at:
            # Too few earlier stoppages lasted past this SLA to flag on. Once fewer than `min_evidence` of them
            # lasted as long as this one has, history knows nothing of how it ends, and the step's waits (those
            # that went overdue in this stoppage among them) have the evidence; until then the stoppages that
            # lasted as long say it most likely ends in time.
            since, flow = stopped
            age = (flow.known_until - since).total_seconds()
            left = (due - since).total_seconds()
            unknown = outlasted_by(flow.stoppages, age, left, self.conf.min_evidence - 1e-9)
            risk_at = max(from_waits.risk_at, since + timedelta(seconds=unknown))
            if risk_at < due:
                return Forecast(behind.next_step_eta, risk_at, f"{behind.basis}; waits: {from_waits.basis}")
        return behind

    def _from_waits(
        self,
        workflow: str,
        step: str,
        facility: str,
        criticality: str,
        waiting_since: datetime,
        sla: float | None,
    ) -> Forecast | None:
        """The forecast from the step's past waits on the narrowest basis with enough of them, or None."""
        waits = self.waits(workflow, step, facility, criticality)
        if waits is None:
            return None
        median = waits.quantile(0.5)
        eta = waiting_since + timedelta(seconds=median)
        basis = f"{waits.basis}: {waits.samples} waits after {step} in {format_duration(self.conf.history)}"
        basis += f", median {format_duration(median)}"
        if sla is None:
            return Forecast(eta, None, basis)
        risk = risk_after(waits, sla, self.conf.risk_share, self.conf.min_evidence)
        basis += f", {waits.share_within(sla):.0%} within the {format_duration(sla)} SLA"
        return Forecast(eta, waiting_since + timedelta(seconds=risk), basis)

    def _behind_stoppage(
        self, step: str, since: datetime, flow: StepFlow, waiting_since: datetime, sla: float | None
    ) -> Forecast:
        """The forecast of a transaction waiting after a stopped step: it moves on when the stoppage ends."""
        age = (flow.known_until - since).total_seconds()
        # How long those that lasted past `age` lasted (the middle of what each may have lasted, past `age`).
        lasting = sorted((max(lo, age) + hi) / 2 for lo, hi in flow.stoppages if hi > age) or [age]
        eta = since + timedelta(seconds=lasting[len(lasting) // 2])  # the median of those that lasted this long
        middle = sorted((lo + hi) / 2 for lo, hi in flow.stoppages)
        basis = (
            f"stopped: nobody has left {step} since {since:%H:%M:%S} (usually within {format_duration(flow.usual)}); "
            f"{len(flow.stoppages)} earlier stoppages in {format_duration(self.conf.history)}, "
            f"median {format_duration(middle[len(middle) // 2])}"
        )
        if sla is None:
            return Forecast(eta, None, basis)
        left = (waiting_since - since).total_seconds() + sla  # the SLA's end, from the stoppage's start
        risk = stoppage_risk(flow.stoppages, age, left, self.conf.risk_share, self.conf.min_evidence)
        outlasted = outlasting(flow.stoppages, age)
        ended_in_time = outlasted - outlasting(flow.stoppages, left)
        basis += f"; {_count(ended_in_time)} of {_count(outlasted)} that lasted as long ended within the SLA"
        return Forecast(eta, since + timedelta(seconds=risk), basis)


def _count(n: float) -> str:
    """A count of stoppages, some of which count in part: whole when it is."""
    return f"{n:.0f}" if abs(n - round(n)) < 0.05 else f"{n:.1f}"
