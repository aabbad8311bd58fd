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
exceeds the share of history that finished within the SLA". A wait that has not ended is in the history
once its transaction is overdue (past the SLA it was judged by), as lasting until now: it did not end
within the SLA, and for every duration up to the SLA that is all F needs to know. Without them the waits
that never end (an approver away for good, a message lost) would leave F(s) optimistic and the risk time
late. Waits still within their SLA are left out until they end or go overdue: their outcome is unknown.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from triage.durations import format_duration
from triage.settings import Settings
from triage.store import Store
from triage.vocabulary import Criticality, State, names

log = logging.getLogger("triage.correlator")
LEVELS = tuple(i / 100 for i in range(101))  # the quantiles kept per basis: 0, 0.01, ..., 1
# Aggregate-function parameters must be literals: the levels are our own constant, formatted in.
_WAITS = """
SELECT Workflow, FromStep, Criticality, Facility, grouping(Criticality, Facility) AS coarse, count() AS n,
       quantilesExactInclusive(__LEVELS__)(Seconds) AS q
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
_OPEN = (State.IN_PROGRESS, State.STALLED, State.BLOCKED)  # still waiting for their next step
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


def risk_after(waits: Waits, sla: float, risk_share: float) -> float:
    """How long into its wait a transaction becomes at risk of missing `sla` (module docstring: t*)."""
    level = (waits.share_within(sla) - (1.0 - risk_share)) / risk_share
    return 0.0 if level <= 0 else min(sla, waits.quantile(level))


class Forecaster:
    """The correlator's cache of past waits, read again at most once per `refresh` seconds."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.conf = settings.correlation.forecast
        self._waits: dict[tuple[str, ...], Waits] = {}
        self._read_at: float | None = None

    def refresh(self, now: datetime, force: bool = False) -> None:
        """Read the waits of the history before `now` unless they were read less than `refresh` ago."""
        if not self.conf.enabled:
            return
        if not force and self._read_at is not None and time.monotonic() - self._read_at < self.conf.refresh:
            return
        facilities = self.settings.facilities
        params = {
            "since": now - timedelta(seconds=self.conf.history),
            "facilities": [f.id for f in facilities],
            "tiers": [str(f.criticality) for f in facilities],
            "default_tier": str(Criticality.NORMAL),  # an unknown facility's, as the correlator judges it
            "now": now,
            "open": names(_OPEN),
        }
        sql = _WAITS.replace("__LEVELS__", ", ".join(f"{x:g}" for x in LEVELS))
        self._read_at = time.monotonic()  # a failed read is retried after `refresh` too
        try:
            rows = self.store.query(sql, params).result_rows
        except Exception as exc:  # forecasts are extra: judging states must go on without them
            log.error("event=forecast_history_failed keeping=last_read error=%r", exc)
            return
        waits: dict[tuple[str, ...], Waits] = {}
        for workflow, step, criticality, facility, coarse, n, q in rows:
            level = _LEVEL[int(coarse)]
            basis = {"facility": f"facility {facility or '(none)'}", "criticality": f"criticality {criticality}"}
            key = {"facility": (facility,), "criticality": (criticality,), "step": ()}[level]
            waits[(workflow, step, level, *key)] = Waits(basis.get(level, "workflow step"), int(n), tuple(q))
        self._waits = waits

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
        waits = self.waits(workflow, step, facility, criticality)
        if waits is None:
            return None
        median = waits.quantile(0.5)
        eta = waiting_since + timedelta(seconds=median)
        basis = f"{waits.basis}: {waits.samples} waits after {step} in {format_duration(self.conf.history)}"
        basis += f", median {format_duration(median)}"
        if sla is None:
            return Forecast(eta, None, basis)
        risk = risk_after(waits, sla, self.conf.risk_share)
        basis += f", {waits.share_within(sla):.0%} within the {format_duration(sla)} SLA"
        return Forecast(eta, waiting_since + timedelta(seconds=risk), basis)
