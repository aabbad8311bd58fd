"""How Triage's breach forecasts did on the demo, judged against the simulator's truth.

Every few seconds the demo reads Triage's in-progress transactions and the forecast each carries (the
read model `GET /api/v1/transactions` uses) and notes, per wait, its risk time: from then on the API
calls it at risk (the forecast is written when the wait begins, well before). Against the truth's
waits (simulator.truth.Judge.waits: a wait under an SLA, which the next step ended in time, late, or not
yet) that gives the issue's two figures:

- of the waits that went past their SLA, the share flagged at risk at least `LEAD` simulated seconds
  before the SLA passed (and the share flagged at all before it passed);
- of the waits flagged while they were still waiting, the share that made their SLA after all.

A risk time after the truth's next step happened is no flag: Triage may still show it for the second
or two its correlation lags (tens of simulated seconds at the demo's speed), but that is the pipeline's
lag, not the forecast's judgement. Waits of live transactions only (history
played before the run is what forecasts learn from), and none during which a step failed for good (that
transaction failed; it did not breach).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from correlator import TransactionFilter, list_transactions
from simulator.transactions import LIVE, Transactions
from simulator.truth import Judge
from triage.store import Store
from triage.vocabulary import State

LEAD = 300.0  # simulated seconds: "at least 5 simulated minutes before their SLA passes"
SAME_DUE = 2.0  # wall seconds: Triage's due time and the truth's for the same wait agree within this
MAX_IN_FLIGHT = 20_000  # transactions read per look: far more than the demo has in flight


@dataclass(frozen=True)
class ForecastFigures:
    stalled: int  # waits that went past their SLA
    caught_early: int  # ...flagged at risk at least LEAD simulated seconds before it passed
    caught: int  # ...flagged at risk before it passed
    flagged: int  # waits flagged while still waiting, whose outcome is known
    made_it: int  # ...that made their SLA after all
    # the same five counts per "workflow/step" the wait followed: where the misses come from
    by_step: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)

    def line(self) -> str:
        """The demo's sentence: "flagged at risk ≥5 min before breach: X% of those that stalled; Y% ..."."""
        early, any_lead = _share(self.caught_early, self.stalled), _share(self.caught, self.stalled)
        false = _share(self.made_it, self.flagged)
        return (
            f"Breach forecasts: flagged at risk ≥{LEAD / 60:g} min before breach: {early} of the {self.stalled:,} "
            f"waits that stalled ({any_lead} flagged before breach at all); {false} of the {self.flagged:,} "
            "flagged completed in time"
        )

    def table(self) -> list[str]:
        """One line per workflow step: stalled, caught early, caught, flagged, made it."""
        rows = sorted(self.by_step.items(), key=lambda kv: -kv[1][0])
        return [
            f"{step}: stalled {a}, flagged ≥{LEAD / 60:g} min early {b}, before breach {c}; flagged {d}, made it {e}"
            for step, (a, b, c, d, e) in rows
        ]


class ForecastWatch:
    """When the demo first saw each wait flagged at risk, and how that compares with the truth."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        # (workflow, key, step) → [(risk time, due)] of the waits seen with a forecast, epoch seconds
        self._flagged: dict[tuple[str, str, str], list[tuple[float, float]]] = {}

    def look(self, store: Store) -> None:
        """Note the forecasts of the transactions in progress now (blocking: run it in a thread)."""
        for t in list_transactions(store, TransactionFilter(states=(State.IN_PROGRESS,)), limit=MAX_IN_FLIGHT):
            f = t.forecast
            if f is None or f.risk_at is None or f.breach_at is None:
                continue
            self.note(t.workflow, t.key, t.current_step, _epoch(f.risk_at), _epoch(f.breach_at))

    def note(self, workflow: str, key: str, step: str, risk_at: float, due: float) -> None:
        """A forecast seen: the wait after `step` is at risk from `risk_at` until `due` (epoch seconds)."""
        flags = self._flagged.setdefault((workflow, key, step), [])
        if not any(abs(d - due) < SAME_DUE for _, d in flags):
            flags.append((risk_at, due))

    def figures(self, transactions: Transactions, judge: Judge, now: float | None = None) -> ForecastFigures:
        """The two figures (and their counts) over the live waits decided by `now`."""
        now = now or time.time()
        stalled = caught_early = caught = flagged = made_it = 0
        by_step: dict[str, list[int]] = {}
        for tx in transactions:
            if tx.origin != LIVE:
                continue
            for wait in judge.waits(tx.workflow, list(tx.observations)):
                if wait.failed:
                    continue
                made = wait.ended is not None and wait.ended <= wait.due
                missed = (wait.ended is None and now > wait.due) or (wait.ended is not None and wait.ended > wait.due)
                if not (made or missed):
                    continue  # still waiting within its SLA
                first = self._first_flag(tx.workflow, tx.key, wait.step, wait.due)
                if first is not None and first >= wait.due:
                    first = None  # past its SLA a transaction is breached, not at risk
                if first is not None and wait.ended is not None and first >= wait.ended:
                    first = None  # it had moved on by then (Triage may lag a second behind: not a flag)
                row = by_step.setdefault(f"{tx.workflow}/{wait.step}", [0, 0, 0, 0, 0])
                early = first is not None and (wait.due - first) * self.speed >= LEAD
                if missed:
                    row[0] += 1
                    row[1] += early
                    row[2] += first is not None
                if first is not None:
                    row[3] += 1
                    row[4] += made
        stalled, caught_early, caught, flagged, made_it = (sum(r[i] for r in by_step.values()) for i in range(5))
        steps = {step: (r[0], r[1], r[2], r[3], r[4]) for step, r in by_step.items()}
        return ForecastFigures(stalled, caught_early, caught, flagged, made_it, steps)

    def _first_flag(self, workflow: str, key: str, step: str, due: float) -> float | None:
        times = [seen for seen, d in self._flagged.get((workflow, key, step), []) if abs(d - due) < SAME_DUE]
        return min(times, default=None)


def _epoch(value: datetime) -> float:
    return value.timestamp()


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"
