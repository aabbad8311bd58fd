"""The demo's breach-forecast figures against hand-made truth: which waits stalled, which were flagged
while still waiting and early enough, and which of the flagged made their SLA after all."""

from __future__ import annotations

from datetime import datetime

from simulator.config import demo_config
from simulator.forecasts import ForecastWatch
from simulator.observe import SPAN, Observation
from simulator.transactions import BACKFILL, LIVE, Transaction, Transactions
from simulator.truth import HealthLedger, Judge, Wait
from triage.settings import Settings

T0 = 1_800_000_000.0
SPEED = 40.0  # the demo's SLAs divided by it: budget approval at a critical facility 18 s, PO created 12 s


def ob(at: float, step: str, failure: bool = False) -> Observation:
    return Observation(
        at_ns=int((T0 + at) * 1e9), emitted=T0 + at, source=SPAN, step=step, error=False, failure=failure,
        span_kind="Server", service="svc", peer="", destination="", message_id="", facility="STM-ICU",
    )  # fmt: skip


def test_waits_and_figures() -> None:
    settings = Settings.model_validate(demo_config(SPEED, "t", None, datetime(2027, 1, 14).date()))
    conf = settings.correlation
    judge = Judge(settings, HealthLedger(conf.health_window, conf.dependency_error_rate, 3))
    txs = Transactions()

    def tx(key: str, *obs: Observation, origin: str = LIVE) -> None:
        txs.add(Transaction("procure_to_pay", key, "STM-ICU", 0.0, origin=origin, observations=list(obs)))

    tx("A", ob(0, "requisition"), ob(5, "budget_approval"))  # approved in time; then waits for the PO
    tx("B", ob(0, "requisition"))  # never approved
    tx("C", ob(0, "requisition"), ob(30, "budget_approval"))  # approved late
    tx("D", ob(0, "requisition"), ob(15, "budget_approval"))  # approved in time, after its risk time
    tx("E", ob(0, "requisition"))  # never approved
    tx("F", ob(0, "requisition"), ob(3, "requisition", failure=True))  # failed: no breach to forecast
    tx("H", ob(0, "requisition"), origin=BACKFILL)  # history: what forecasts learn from, not judged

    # The wait after requisition runs to the approval; the one after approval to the PO (12 s, PO created's).
    assert judge.waits("procure_to_pay", txs.get("procure_to_pay", "D").observations) == [  # type: ignore[union-attr]
        Wait("requisition", T0, T0 + 18, T0 + 15, False),
        Wait("budget_approval", T0 + 15, T0 + 27, None, False),
    ]

    watch = ForecastWatch(speed=20.0)  # 5 simulated minutes are 15 s here
    due = T0 + 18
    watch.note("procure_to_pay", "A", "requisition", T0 + 10, due)  # after it was approved: no flag
    watch.note("procure_to_pay", "B", "requisition", T0 + 8, due)  # flagged 10 s = 200 sim s before breach
    watch.note("procure_to_pay", "C", "requisition", T0 + 2, due)  # flagged 320 sim s before breach
    watch.note("procure_to_pay", "D", "requisition", T0 + 12, due)  # flagged, and made it after all
    watch.note("procure_to_pay", "E", "requisition", T0 + 18, due)  # at its breach: breached, not at risk
    watch.note("procure_to_pay", "F", "requisition", T0 + 1, due)

    f = watch.figures(txs, judge, now=T0 + 100)
    # Stalled: B, C and E after requisition; A, C and D after approval (no PO within 12 s).
    assert (f.stalled, f.caught, f.caught_early) == (6, 2, 1)
    assert (f.flagged, f.made_it) == (3, 1)
    assert f.line() == (
        "Breach forecasts: flagged at risk ≥5 min before breach: 17% of the 6 waits that stalled "
        "(33% flagged before breach at all); 33% of the 3 flagged completed in time"
    )
