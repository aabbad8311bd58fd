"""Breach forecasts on the embedded store: business events with known waits written directly (the test is
about the forecast's arithmetic, not about stitching), the correlator judging them, and the read model
saying when each in-flight transaction should move on and whether it is at risk now."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from correlator import (
    Correlator,
    Selection,
    ShardWorker,
    TransactionFilter,
    get_transaction,
    group_transactions,
    refresh_gauges,
)
from correlator import list_transactions as listed
from correlator.forecast import (
    LEVELS,
    READ_SHARE,
    Forecaster,
    Waits,
    outlasted_by,
    outlasting,
    risk_after,
    stoppage_risk,
)
from tests.conftest import LiveServer, server_settings
from tests.dashboards.conftest import DashboardServer, serve_dashboards
from triage.settings import Settings, load_settings
from triage.store import Store

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Each test's own now: the store reads at-risk against the wall clock, so a module-wide now taken at
    collection would age by however long the tests before ran (minutes in the whole suite)."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


MIN = 60.0
WORKFLOW: dict[str, Any] = {
    "name": "procure_to_pay",
    "keys": ["erp.po_number"],
    "facility": "facility.id",
    "steps": [
        {"name": "requisition", "match": {"span_name": "POST /requisitions"}},
        {"name": "approval", "match": {"service": "approval-saas"}, "human": True,
         "sla": {"normal": "30m", "critical": "10m"}},
        {"name": "po_sent", "match": {"span_name": "send PO"}, "sla": {"normal": "1h"}},
    ],
    "terminal": ["po_sent"],
}  # fmt: skip
FACILITIES = [
    {"id": "STM-ICU", "name": "St. Mary's ICU", "criticality": "critical"},
    {"id": "CLN-04", "name": "Eastside Clinic", "criticality": "normal"},
    {"id": "CLN-05", "name": "Westside Clinic", "criticality": "normal"},
    {"id": "LAB-01", "name": "Central Lab", "criticality": "high"},
]
_COLUMNS = ["Workflow", "Key", "EventId", "Step", "At", "Source", "Service", "SpanKind", "Status", "Failure"]
_COLUMNS += ["Facility", "Value"]
_keys = itertools.count(4500000000)


def settings(store: Store, **forecast: Any) -> Settings:
    values = {"store": store.dsn, "facilities": FACILITIES, "workflows": [WORKFLOW]}
    return load_settings(None, {**values, "correlation": {"forecast": forecast}}, environ={})


def transaction(facility: str, *steps: tuple[str, datetime]) -> tuple[str, list[list[Any]]]:
    """Rows of business_events for one transaction: its progress events at the given times."""
    key = str(next(_keys))
    rows = [
        ["procure_to_pay", key, f"{key}-{i}", step, at, "span", "erp", "Server", "ok", 0, facility, 1000.0]
        for i, (step, at) in enumerate(steps)
    ]
    return key, rows


def history(facility: str, waits_minutes: list[float], start: datetime) -> list[list[Any]]:
    """Completed transactions whose wait after requisition took the given minutes."""
    rows: list[list[Any]] = []
    for i, wait in enumerate(waits_minutes):
        begun = start + timedelta(minutes=i)
        approved = begun + timedelta(minutes=wait)
        rows += transaction(
            facility,
            ("requisition", begun),
            ("approval", approved),
            ("po_sent", approved + timedelta(minutes=1)),
        )[1]
    return rows


def waiting(store: Store, facility: str, minutes: float) -> str:
    """An in-flight transaction waiting after requisition for `minutes`."""
    key, rows = transaction(facility, ("requisition", NOW - timedelta(minutes=minutes)))
    store.insert("business_events", rows, _COLUMNS)
    return key


def judge(store: Store, s: Settings) -> None:
    Correlator(store, s, scratch="forecast").replay(NOW - timedelta(days=1), NOW, NOW)


def test_waits_interpolate_like_the_sample_they_come_from() -> None:
    """Evenly spread waits of 1..40 minutes: quantiles and the share within a duration are linear."""
    waits = Waits("criticality normal", 40, tuple((1 + 39 * level) * MIN for level in LEVELS))
    assert waits.quantile(0.5) == pytest.approx(20.5 * MIN)
    assert waits.share_within(30 * MIN) == pytest.approx(29 / 39)
    assert waits.share_within(0.5 * MIN) == 0 and waits.share_within(41 * MIN) == 1
    # Still waiting at t*, the SLA is made with probability (F(s) - F(t*)) / (1 - F(t*)) = 1 - risk_share.
    risk = risk_after(waits, 30 * MIN, 0.95, 3)
    made = (waits.share_within(30 * MIN) - waits.share_within(risk)) / (1 - waits.share_within(risk))
    assert made == pytest.approx(0.05, abs=1e-6)
    assert risk == pytest.approx((1 + 39 * (29 / 39 - 0.05) / 0.95) * MIN)
    # A flag rests on evidence: 10 of the 40 waits (10/39 of the spread) went past the SLA; 12 flags nothing.
    assert risk_after(waits, 30 * MIN, 0.95, 11) == risk
    assert risk_after(waits, 30 * MIN, 0.95, 12) == 30 * MIN
    # Every past wait made a 45-minute SLA: no wait that long is known to miss it, so none is flagged before it.
    assert risk_after(waits, 45 * MIN, 0.95, 1) == 45 * MIN
    # When most of history misses the SLA, a transaction is at risk from the start of its wait.
    assert risk_after(waits, 2 * MIN, 0.95, 3) == 0


def test_forecast_from_history_eta_is_the_median_and_at_risk_once_waits_as_long_missed(store: Store) -> None:
    """40 waits at a normal clinic, SLA 30 minutes: 36 of 1..18.5 minutes and 4 of 40..55 (they missed it). The
    ETA is the median wait; a transaction is at risk once at most 5% of the past waits that lasted as long made
    the SLA (t* = F⁻¹((F(30m) - 0.05) / 0.95)): past the slowest that made it, 18.5 minutes. Another
    clinic whose 40 waits of 1..20.5 minutes all made it flags nobody before the SLA: past its slowest wait
    history says nothing of missing it (min_evidence)."""
    s = settings(store)
    waits = [1 + k / 2 for k in range(36)] + [40, 45, 50, 55]
    store.insert("business_events", history("CLN-04", waits, NOW - timedelta(hours=5)), _COLUMNS)
    store.insert(
        "business_events", history("CLN-05", [1 + k / 2 for k in range(40)], NOW - timedelta(hours=5)), _COLUMNS
    )
    calm, late = waiting(store, "CLN-04", 15), waiting(store, "CLN-04", 22)
    unknown = waiting(store, "CLN-05", 22)
    judge(store, s)

    calm_tx, late_tx = get_transaction(store, "procure_to_pay", calm), get_transaction(store, "procure_to_pay", late)
    assert calm_tx is not None and late_tx is not None
    assert calm_tx.state == late_tx.state == "in_progress"
    for tx, minutes in ((calm_tx, 15), (late_tx, 22)):
        f = tx.forecast
        assert f is not None
        waiting_since = NOW - timedelta(minutes=minutes)
        assert abs((f.next_step_eta - waiting_since).total_seconds() - 10.5 * MIN) < 1  # the lower median
        assert f.breach_at == waiting_since + timedelta(minutes=30)
        assert f.risk_at is not None and abs((f.risk_at - waiting_since).total_seconds() - 18.5 * MIN) < 1
        assert f.basis.startswith("facility CLN-04: 40 waits after requisition in 7d, median 10m")
        assert "90% within the 30m SLA" in f.basis
    unknown_tx = get_transaction(store, "procure_to_pay", unknown)
    assert unknown_tx is not None and unknown_tx.forecast is not None and not unknown_tx.forecast.at_risk
    assert "100% within the 30m SLA" in unknown_tx.forecast.basis
    assert unknown_tx.forecast.risk_at == unknown_tx.forecast.breach_at  # not before the SLA passes
    assert calm_tx.forecast is not None and not calm_tx.forecast.at_risk
    assert late_tx.forecast is not None and late_tx.forecast.at_risk

    at_risk = listed(store, TransactionFilter(workflow="procure_to_pay", at_risk=True))
    assert [t.key for t in at_risk] == [late]
    not_at_risk = {t.key for t in listed(store, TransactionFilter(workflow="procure_to_pay", at_risk=False))}
    assert calm in not_at_risk and late not in not_at_risk
    # An alert rule's selection of in-progress transactions at risk finds it too.
    [group] = group_transactions(store, Selection(states=("in_progress",), at_risk=True), ["workflow"])
    assert group.count == 1 and group.sample[0].key == late
    # ...and so does /metrics, for Prometheus rules.
    refresh_gauges(store, NOW)
    labels = {"workflow": "procure_to_pay", "facility": "CLN-04", "criticality": "normal"}
    assert REGISTRY.get_sample_value("triage_transactions_at_risk", labels) == 1
    assert REGISTRY.get_sample_value("triage_transactions_at_risk_value", labels) == 1000.0


def test_waits_that_never_ended_count_once_overdue(store: Store) -> None:
    """29 waits that ended within 1..15 minutes, and 10 transactions still stuck after requisition, hours past
    their 30-minute SLA: once judged overdue they are history too (as lasting until now), so 29 of 39 waits
    made the SLA, not all, and the slow one is at risk before its SLA passes, where it was not flagged at all."""
    s = settings(store)
    store.insert(
        "business_events", history("CLN-04", [1 + k / 2 for k in range(29)], NOW - timedelta(hours=5)), _COLUMNS
    )
    for hours in range(10):
        waiting(store, "CLN-04", 120 + 10 * hours)
    slow = waiting(store, "CLN-04", 14)
    since = NOW - timedelta(minutes=14)
    judge(store, s)  # the first judgement writes the stuck ones; its forecasts knew none of them overdue
    first = get_transaction(store, "procure_to_pay", slow)
    assert first is not None and first.forecast is not None and first.forecast.risk_at is not None
    assert first.forecast.basis.startswith("facility CLN-04: 29 waits after requisition")
    assert "100% within the 30m SLA" in first.forecast.basis
    assert first.forecast.risk_at == since + timedelta(minutes=30)  # none known to miss: no flag before the SLA

    judge(store, s)  # a new correlator reads the history again: the ten are overdue now
    again = get_transaction(store, "procure_to_pay", slow)
    assert again is not None and again.forecast is not None and again.forecast.risk_at is not None
    f = again.forecast
    assert f.basis.startswith("facility CLN-04: 39 waits after requisition") and "74% within the 30m SLA" in f.basis
    # F(t*) = (29/39 - 0.05) / 0.95 = 73% of the 39: the slowest wait that made it, 15 minutes.
    assert abs((f.risk_at - since).total_seconds() - 15 * MIN) < 1


def stopping_history(stoppages: list[float], end: datetime) -> list[list[Any]]:
    """A transaction every 2 minutes leaving requisition a minute later, for the 20 hours before `end`, but for
    stoppages of the given minutes: a transaction begins waiting as one begins, and it and those after it leave
    when it ends (5 seconds apart), the way a queue drains once its consumer is back."""
    rows: list[list[Any]] = []
    begun, stops = end - timedelta(hours=20), list(stoppages)
    while begun < end:
        length = stops.pop(0) if stops and len(rows) % 40 == 0 and rows else None
        if length is None:
            rows += transaction("CLN-04", ("requisition", begun), ("approval", begun + timedelta(minutes=1)))[1]
            begun += timedelta(minutes=2)
            continue
        resumed, i = begun + timedelta(minutes=length), 0
        while begun < resumed:
            left = resumed + timedelta(seconds=5 * i)
            rows += transaction("CLN-04", ("requisition", begun), ("approval", left))[1]
            begun, i = begun + timedelta(minutes=2), i + 1
    return rows


def stopped_ten_minutes(store: Store) -> datetime:
    """The stopping history with stoppages of 15, 16, 17 and 45 minutes, and a last exit from requisition ten
    minutes ago (returned), nobody having left since."""
    last_exit = NOW - timedelta(minutes=10)
    store.insert("business_events", stopping_history([15, 16, 17, 45], last_exit - timedelta(minutes=1)), _COLUMNS)
    store.insert(
        "business_events",
        transaction("CLN-04", ("requisition", last_exit - timedelta(minutes=1)), ("approval", last_exit))[1],
        _COLUMNS,
    )
    return last_exit


def test_waits_behind_a_stopped_step_are_forecast_from_how_long_its_stoppages_lasted(store: Store) -> None:
    """Requisitions usually leave within a minute; four times in the history nobody left for 15, 16, 17 and 45
    minutes. Nobody has left for 10 minutes now: a wait that needs the stoppage over within 28 minutes of its
    start has 3 chances in 4 now; past 17 minutes only the 45-minute one is left, too few (min_evidence 3) to
    flag on, so its risk time comes from the step's waits instead (the few that waited out the 45-minute one
    past their SLA: at risk a minute or less before it passes); asking for one stoppage's evidence, it is at
    risk once the stoppage has lasted nearly 18 (the 17-minute one may have lasted to 18). A critical one with an 11-minute SLA left of the stoppage is at risk now (none of the
    four ended that soon), though its own wait is 9 minutes old and every usual wait took a minute."""
    s = settings(store)
    last_exit = stopped_ten_minutes(store)
    in_line = waiting(store, "CLN-04", 12)  # waiting since before the last exit: its SLA ends 28m into the stoppage
    key, rows = transaction("STM-ICU", ("requisition", NOW - timedelta(minutes=9)))
    store.insert("business_events", rows, _COLUMNS)
    waiting(store, "CLN-05", 3)  # a stoppage holds four at least: one slow transaction alone stops no step
    waiting(store, "CLN-05", 0)  # the workflow's telemetry is current: a requisition just now
    judge(store, s)  # the first judgement writes the waiters; the history read before it knew of none
    judge(store, s)

    first = get_transaction(store, "procure_to_pay", in_line)
    critical = get_transaction(store, "procure_to_pay", key)
    assert first is not None and critical is not None and first.forecast and critical.forecast
    assert first.state == critical.state == "in_progress"
    f = first.forecast
    assert f.basis.startswith("stopped: nobody has left requisition since") and "4 earlier stoppages" in f.basis
    assert "3 of 4 that lasted as long ended within the SLA" in f.basis
    assert f.breach_at is not None and f.risk_at is not None and not f.at_risk
    assert abs((f.breach_at - (NOW - timedelta(minutes=12) + timedelta(minutes=30))).total_seconds()) < 1
    assert f.breach_at - timedelta(minutes=1) < f.risk_at < f.breach_at
    assert "; waits: facility CLN-04: 601 waits after requisition in 7d, median 1m, 99% within the 30m SLA" in f.basis
    # The eta: the median of the stoppages that lasted 10 minutes already (15, 16, 17, 45 from when the first
    # transaction each held began waiting; a minute more from the exit before it, 16, 17, 18, 46: the middle of
    # each, and of those the third, 17.5).
    assert abs((f.next_step_eta - (last_exit + timedelta(minutes=17.5))).total_seconds()) < 1
    c = critical.forecast
    assert c.at_risk and c.risk_at is not None and abs((c.risk_at - NOW).total_seconds()) < 1
    assert "0 of 4 that lasted as long ended within the SLA" in c.basis

    judge(store, settings(store, min_evidence=1))
    one = get_transaction(store, "procure_to_pay", in_line)
    assert one is not None and one.forecast is not None and one.forecast.risk_at is not None
    # The 17-minute one lasted between 17 and 18: once 1/0.95 of a stoppage outlasts the age (the 45-minute one
    # and 5% of the 17-minute one), 17m57s, at most 5% of those left end in time.
    assert abs((one.forecast.risk_at - (last_exit + timedelta(minutes=18 - 0.05 / 0.95))).total_seconds()) < 1
    assert not one.forecast.at_risk

    # Someone leaves the step: it moves, and the same waits are forecast from the usual waits again.
    store.insert(
        "business_events",
        transaction("CLN-04", ("requisition", NOW - timedelta(minutes=3)), ("approval", NOW - timedelta(seconds=30)))[
            1
        ],
        _COLUMNS,
    )
    judge(store, s)
    moving = get_transaction(store, "procure_to_pay", key)
    assert moving is not None and moving.forecast is not None
    assert moving.forecast.basis.startswith("workflow step: 602 waits after requisition")  # one STM-ICU wait only


def test_a_stoppage_sparse_history_saw_begin_late_does_not_hold_a_flag_back(store: Store) -> None:
    """Three stoppages of 45 minutes in busy hours; one more in a quiet spell, when nobody had come to the step
    for three hours before a transaction began waiting 20 minutes before the stoppage ended: taken as 20
    minutes, it says one stoppage in four that outlasted 15 minutes ended within 30. It lasted anywhere from 20
    minutes to 3h40m, and ended in time in 10 minutes of those 201: 15 minutes into the stoppage now, a wait
    whose SLA ends 30 minutes into it is at risk at once."""
    s = settings(store)
    quiet_from = NOW - timedelta(hours=10)
    rows = stopping_history([45, 45, 45], quiet_from)
    late_from = quiet_from + timedelta(minutes=200)  # the first transaction the late-seen stoppage held
    resumed = late_from + timedelta(minutes=20)
    for i in range(10):
        begun = late_from + timedelta(minutes=2 * i)
        rows += transaction("CLN-04", ("requisition", begun), ("approval", resumed + timedelta(seconds=5 * i)))[1]
    last_exit = NOW - timedelta(minutes=15)
    begun = resumed + timedelta(minutes=2)
    while begun + timedelta(minutes=1) <= last_exit:
        rows += transaction("CLN-04", ("requisition", begun), ("approval", begun + timedelta(minutes=1)))[1]
        begun += timedelta(minutes=2)
    store.insert("business_events", rows, _COLUMNS)
    last_exit = max(r[4] for r in rows if r[3] == "approval")
    in_line = waiting(store, "CLN-04", (NOW - last_exit).total_seconds() / MIN)  # began as nobody left any more
    for minutes in (12, 8, 4, 0):
        waiting(store, "CLN-05", minutes)
    judge(store, s)
    judge(store, s)

    forecaster = Forecaster(store, s)
    forecaster.refresh(NOW, force=True)
    stopped = forecaster.stoppage("procure_to_pay", "requisition")
    assert stopped is not None and abs((stopped[0] - last_exit).total_seconds()) < 1
    late = [stop for stop in stopped[1].stoppages if stop[1] - stop[0] > 60 * MIN]
    assert len(stopped[1].stoppages) == 4 and len(late) == 1
    lo, hi = late[0]
    assert abs(lo - 20 * MIN) < 1 and abs(hi - (resumed - (quiet_from - timedelta(minutes=1))).total_seconds()) < 61
    f = get_transaction(store, "procure_to_pay", in_line)
    assert f is not None and f.forecast is not None and f.forecast.risk_at is not None
    assert f.forecast.at_risk and abs((f.forecast.risk_at - NOW).total_seconds()) < 2, f.forecast
    assert "0 of 4 that lasted as long ended within the SLA" in f.forecast.basis
    # Taken as its 20 minutes, the same history would hold the flag until the stoppage is 20 minutes old.
    as_seen = tuple((a, a) for a, _ in stopped[1].stoppages)
    assert stoppage_risk(as_seen, 15 * MIN, 30 * MIN, 0.95, 3) == 20 * MIN


def test_telemetry_that_lags_stops_no_step(store: Store) -> None:
    """The same stopped step, but nothing of the workflow is newer than its last exit ten minutes ago (a
    collector catching up, say): every step of it looks still, so none is called stopped."""
    s = settings(store)
    last_exit = stopped_ten_minutes(store)
    for minutes in (12, 11, 10.8, 10.5):
        waiting(store, "CLN-05", minutes)
    judge(store, s)
    forecaster = Forecaster(store, s)
    forecaster.refresh(NOW, force=True)
    assert forecaster.stoppage("procure_to_pay", "requisition") is None
    waiting(store, "CLN-05", 0)  # a requisition just now: the workflow is seen up to now
    judge(store, s)
    forecaster.refresh(NOW, force=True)
    stopped = forecaster.stoppage("procure_to_pay", "requisition")
    assert stopped is not None and abs((stopped[0] - last_exit).total_seconds()) < 1


def test_an_exit_ends_a_stoppage_until_a_history_read_that_began_after_it(store: Store) -> None:
    """An exit judged from a stopped step ends the stoppage at once; the next history read finds the step's
    exits in the store itself and forgets the exits judged before it began. (An exit's time is its
    transaction's newest step's: when two steps arrive at once it is later than when the transaction left, and
    kept, it would end every later stoppage of the step.) One judged while a read ran is kept past that read."""
    s = settings(store)
    stopped_ten_minutes(store)
    for minutes in (12, 11, 10.8, 10.5, 0):
        waiting(store, "CLN-05", minutes)
    judge(store, s)
    forecaster = Forecaster(store, s)
    forecaster.refresh(NOW, force=True)
    assert forecaster.stoppage("procure_to_pay", "requisition") is not None
    forecaster.exited("procure_to_pay", "requisition", NOW)  # not in the store: left earlier, seen late
    assert forecaster.stoppage("procure_to_pay", "requisition") is None
    forecaster.refresh(NOW, force=True)
    assert forecaster.stoppage("procure_to_pay", "requisition") is not None

    background = Forecaster(store, s, background=True)
    background.refresh(NOW)  # the first read, in this thread
    assert background.stoppage("procure_to_pay", "requisition") is not None
    time.sleep(background._took / READ_SHARE + 0.05)
    background.refresh(NOW)  # a read begins in the background...
    background.exited("procure_to_pay", "requisition", NOW)  # ...and an exit is judged while it may run
    background.join(60)
    assert background.stoppage("procure_to_pay", "requisition") is None  # kept past the read that ran beside it


def test_a_step_that_stops_has_its_waiters_judged_again_though_nothing_of_theirs_arrived(store: Store) -> None:
    """A transaction judged while its step still moved keeps a forecast from the usual waits; once the history
    read finds the step stopped, the next cycle judges everything waiting after it again, though none of their
    events changed and none is due, and they are forecast from the stoppages."""
    s = settings(store, refresh=0)
    last_exit = NOW - timedelta(minutes=10)
    store.insert("business_events", stopping_history([15, 16, 17, 45], last_exit), _COLUMNS)
    waiter = waiting(store, "CLN-04", 10.5)
    for minutes in (4, 3, 2):  # a stoppage holds four at least: one slow transaction alone stops no step
        waiting(store, "CLN-05", minutes)
    correlator = Correlator(store, s, scratch="forecast")
    correlator.replay(NOW - timedelta(days=1), NOW, last_exit + timedelta(seconds=30))  # stopped 30s: as usual
    before = get_transaction(store, "procure_to_pay", waiter)
    assert before is not None and before.forecast is not None
    assert before.forecast.basis.startswith("facility CLN-04")

    correlator.run_once(now=NOW)  # ten minutes on, nobody has left requisition
    after = get_transaction(store, "procure_to_pay", waiter)
    assert after is not None and after.forecast is not None and after.state == "in_progress"
    assert after.forecast.basis.startswith("stopped: nobody has left requisition since")
    assert correlator.forecaster.changed() == []  # told once


def test_how_long_a_stoppage_may_last_before_a_wait_behind_it_is_at_risk() -> None:
    """Earlier stoppages of 10, 20, 30 and 40 minutes; risk_share 0.95 (at risk at a 5% chance or less)."""
    stops = tuple((x, x) for x in (600.0, 1200.0, 1800.0, 2400.0))  # lengths known to the second
    assert stoppage_risk(stops, 300, 1500, 0.95, 1) == 1200  # past the 20-minute one none that is left ends in time
    assert stoppage_risk(stops, 300, 1500, 0.95, 3) == 1500  # ...but only two outlasted it: too few to flag on
    assert stoppage_risk(stops, 300, 3000, 0.95, 1) == 3000  # every one ended in time: not before the SLA
    assert stoppage_risk(stops, 300, 500, 0.95, 3) == 300  # none of the four ended within 500s: at risk at once
    assert stoppage_risk(stops, 2500, 9000, 0.95, 1) == 9000  # longer than every one before: no evidence
    assert stoppage_risk(stops, 300, 1500, 0.6, 2) == 600  # at most 2 in 5: 2 of 4 now, 1 of the 3 past 10 minutes
    assert stoppage_risk(stops, 100, 200, 0.95, 3) == 100


def test_how_long_history_knows_how_a_stoppage_ends() -> None:
    """Behind a stoppage whose earlier ones mostly ended in time but too few outlasted the SLA to flag on, the
    step's waits take over only once fewer than `min_evidence` earlier stoppages lasted as long as this one has:
    until then those that did say it most likely ends in time. Stoppages of 15-16, 16-17, 17-18 and 45-46
    minutes, three needed: from just past 16 minutes on history knows too little."""
    minute = 60.0
    stops = (
        (15 * minute, 16 * minute),
        (16 * minute, 17 * minute),
        (17 * minute, 18 * minute),
        (45 * minute, 46 * minute),
    )
    assert abs(outlasted_by(stops, 10 * minute, 28 * minute, 3 - 1e-9) - 16 * minute) < 1e-3
    assert outlasted_by(stops, 10 * minute, 12 * minute, 3 - 1e-9) == 12 * minute  # four outlast its whole SLA
    assert outlasted_by(stops, 20 * minute, 28 * minute, 3 - 1e-9) == 20 * minute  # one only: unknown already
    # Half way through the 15-16 one: 3.5 outlast 15.5 minutes; 3.25 once a quarter more of it has gone.
    assert abs(outlasted_by(stops, 10 * minute, 28 * minute, 3.25) - 15.75 * minute) < 1e-6


def test_a_stoppage_seen_begin_late_counts_for_what_it_may_have_lasted() -> None:
    """Sparse traffic: nobody had waited for a while when a stoppage began, so its start lies between the exit
    before it and when the first transaction it held began waiting, and it lasted anywhere between. Three
    earlier stoppages of 90 minutes, seen whole, and one whose first waiter came long after the exit before it:
    58 minutes from the one, 300 from the other."""
    minute = 60.0
    whole = [(90 * minute, 91 * minute)] * 3
    late = (58 * minute, 300 * minute)
    # 50 minutes into this stoppage, a wait whose SLA ends 62 minutes into it. Taken as its 58 minutes, the
    # late one ended in time: one in four, no flag until the stoppage is 58 minutes old. It may have ended in
    # time in 4 minutes of its 242: at risk now.
    assert stoppage_risk((*whole, (58 * minute, 58 * minute)), 50 * minute, 62 * minute, 0.95, 3) == 58 * minute
    assert stoppage_risk((*whole, late), 50 * minute, 62 * minute, 0.95, 3) == 50 * minute
    assert abs(outlasting((*whole, late), 62 * minute) - (3 + 238 / 242)) < 1e-9
    # One seen 50 to 90 minutes long counts in part the other way too: 45 minutes in, an SLA 60 minutes in, it
    # ends in time a quarter of the time (0.25 of 4 is over 5%); once the stoppage is 50 minutes old and
    # counting, a quarter of 4 less what it loses of itself: at most 5% at 52m06s (outlasting falls a 40th a
    # minute from 4 to 3.75 / 0.95).
    narrow = (50 * minute, 90 * minute)
    at = stoppage_risk((*whole, narrow), 45 * minute, 60 * minute, 0.95, 3)
    assert abs(at - (50 + 40 * (4 - 3.75 / 0.95)) * minute) < 1e-3
    missed = outlasting((*whole, narrow), 60 * minute)
    assert abs((outlasting((*whole, narrow), at) - missed) / outlasting((*whole, narrow), at) - 0.05) < 1e-6
    # Evidence counts in part too: the late one outlasted 95 minutes 205 times in 242, less than one stoppage.
    assert stoppage_risk((*whole, late), 50 * minute, 95 * minute, 0.95, 1) == 95 * minute
    assert 58 * minute < stoppage_risk((late, late), 50 * minute, 95 * minute, 0.95, 1) < 95 * minute


def test_basis_narrows_to_the_facility_only_with_enough_waits(store: Store) -> None:
    """min_samples 20: a clinic with 25 waits of its own (27) is forecast from them; one with 5 from every normal
    facility's; a high-criticality lab with 5 (and no other high facility) from the workflow step's; each
    step from its own waits; a completed transaction has no forecast."""
    s = settings(store)
    start = NOW - timedelta(hours=6)
    rows = history("CLN-04", [2.0] * 25, start)  # normal, own basis
    rows += history("CLN-05", [8.0] * 5, start)  # normal, too few of its own
    rows += history("LAB-01", [4.0] * 5, start)  # high, too few anywhere in its tier
    store.insert("business_events", rows, _COLUMNS)
    own, pooled, lab = waiting(store, "CLN-04", 1), waiting(store, "CLN-05", 1), waiting(store, "LAB-01", 1)
    key, approved = transaction(
        "CLN-04", ("requisition", NOW - timedelta(minutes=20)), ("approval", NOW - timedelta(minutes=10))
    )
    store.insert("business_events", approved, _COLUMNS)
    done = history("CLN-04", [3.0], NOW - timedelta(minutes=30))
    store.insert("business_events", done, _COLUMNS)
    judge(store, s)

    def forecast(k: str) -> Any:
        tx = get_transaction(store, "procure_to_pay", k)
        assert tx is not None
        return tx.forecast

    # CLN-04's waits: 25 of 2 minutes, the completed one's 3 and the approved one's 10.
    assert forecast(own).basis.startswith("facility CLN-04: 27 waits")
    assert forecast(pooled).basis.startswith("criticality normal: 32 waits")
    assert forecast(lab).basis.startswith("workflow step: 37 waits")
    assert abs((forecast(own).next_step_eta - (NOW - timedelta(minutes=1))).total_seconds() - 2 * MIN) < 1
    # Waiting after approval, it is forecast from the waits after approval (1 minute each), not requisition's.
    assert forecast(key).basis.startswith("facility CLN-04: 26 waits after approval in 7d, median 1m")
    completed = get_transaction(store, "procure_to_pay", done[0][1])
    assert completed is not None and completed.state == "completed" and completed.forecast is None

    # With a higher bar the clinic's own 25 waits are not enough either.
    store.command("TRUNCATE TABLE business_transactions")
    judge(store, settings(store, min_samples=28))
    assert forecast(own).basis.startswith("criticality normal: 32 waits")


def test_no_forecast_without_history_or_when_disabled(store: Store) -> None:
    key = waiting(store, "CLN-04", 5)
    judge(store, settings(store))
    tx = get_transaction(store, "procure_to_pay", key)
    assert tx is not None and tx.state == "in_progress" and tx.forecast is None

    store.insert("business_events", history("CLN-04", [1.0] * 30, NOW - timedelta(hours=3)), _COLUMNS)
    judge(store, settings(store, enabled=False))
    tx = get_transaction(store, "procure_to_pay", key)
    assert tx is not None and tx.forecast is None
    judge(store, settings(store))
    tx = get_transaction(store, "procure_to_pay", key)
    assert tx is not None and tx.forecast is not None and tx.forecast.basis.startswith("facility CLN-04: 30 waits")
    # 5 minutes is past every past wait, but all of them made the SLA: nothing says this one will not
    assert not tx.forecast.at_risk and tx.forecast.risk_at == tx.forecast.breach_at


def test_a_failing_history_read_leaves_states_judged_without_forecasts(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Forecasts are extra: when the history cannot be read (a server without the quantile function, a
    timeout), transactions are still judged, without a forecast, and the failure is logged."""

    class Refusing:
        def query(self, sql: str, parameters: Any = None) -> Any:
            raise RuntimeError("Code: 46. DB::Exception: Unknown function quantilesExactInclusive")

    store.insert("business_events", history("CLN-04", [1.0] * 30, NOW - timedelta(hours=3)), _COLUMNS)
    key = waiting(store, "CLN-04", 5)
    correlator = Correlator(store, settings(store), scratch="forecast")
    correlator.forecaster.store = Refusing()  # type: ignore[assignment]
    correlator.replay(NOW - timedelta(days=1), NOW, NOW)
    tx = get_transaction(store, "procure_to_pay", key)
    assert tx is not None and tx.state == "in_progress" and tx.forecast is None
    assert "event=forecast_history_failed" in caplog.text


def test_a_server_reads_the_history_beside_its_cycles(store: Store) -> None:
    """A server's correlation loop (ShardWorker) reads the history in the background once its first read has
    landed: over a big store the read takes seconds, which cycles due every fraction of a second must not wait
    for. The first read is the cycle's own (nothing to forecast from before it); later ones land when done,
    and the cycle goes on with the last one meanwhile."""
    s = settings(store, refresh=0)
    store.insert("business_events", history("CLN-04", [5.0] * 30, NOW - timedelta(hours=3)), _COLUMNS)
    worker = ShardWorker(store, s)
    forecaster = worker.forecaster
    assert forecaster.background
    reads = REGISTRY.get_sample_value("triage_correlator_forecast_read_seconds_count") or 0.0
    forecaster.refresh(NOW)
    assert forecaster._reading is None  # read in the caller's thread
    first = forecaster.waits("procure_to_pay", "requisition", "CLN-04", "normal")
    assert first is not None and first.samples == 30
    assert REGISTRY.get_sample_value("triage_correlator_forecast_read_seconds_count") == reads + 1

    store.insert("business_events", history("CLN-04", [5.0] * 30, NOW - timedelta(hours=2)), _COLUMNS)
    # refresh: 0, but reads take at most READ_SHARE of the time: none before five times the last one's.
    forecaster.refresh(NOW)
    assert forecaster._reading is None
    time.sleep(forecaster._took / READ_SHARE + 0.05)
    forecaster.refresh(NOW)
    reading = forecaster._reading
    assert reading is not None and reading.name == "forecast-history"
    forecaster.refresh(NOW)  # a read under way is not started again
    assert forecaster._reading is reading
    forecaster.join(60)
    assert not reading.is_alive()
    assert REGISTRY.get_sample_value("triage_correlator_forecast_read_seconds_count") == reads + 2
    landed = forecaster.waits("procure_to_pay", "requisition", "CLN-04", "normal")
    assert landed is not None and landed.samples == 60

    store.insert("business_events", history("CLN-04", [5.0] * 30, NOW - timedelta(hours=1)), _COLUMNS)
    forecaster.refresh(NOW, force=True)  # forced: read at once, in the caller's thread
    assert forecaster._reading is reading
    forced = forecaster.waits("procure_to_pay", "requisition", "CLN-04", "normal")
    assert forced is not None and forced.samples == 90
    # A replay's or a test's correlator reads in its cycle.
    assert not Correlator(store, s, scratch="forecast").forecaster.background


def test_an_alert_rule_fires_on_at_risk_before_the_sla_passes(store: Store) -> None:
    """`when: {at_risk: true}` pages on-call about the transaction likely to miss its SLA while it is still in
    progress (8 minutes before its breach here), not about the one on track, and stops once it is breached."""
    from alerts import Evaluator  # alerts reads the correlator's tables; the correlator never imports it

    rule = {"name": "approval_at_risk", "when": {"at_risk": True}, "group_by": ["workflow", "key", "step"],
            "summary": "{workflow} {key} likely to miss its SLA at {facility_name}"}  # fmt: skip
    s = load_settings(
        None,
        {"store": store.dsn, "facilities": FACILITIES, "workflows": [WORKFLOW], "alerts": {"rules": [rule]}},
        environ={},
    )
    waits = [1 + k / 2 for k in range(36)] + [40, 45, 50, 55]  # at risk past 18.5 minutes (the test above)
    store.insert("business_events", history("CLN-04", waits, NOW - timedelta(hours=5)), _COLUMNS)
    waiting(store, "CLN-04", 5)  # on track, and still nine minutes on
    late = waiting(store, "CLN-04", 22)
    judge(store, s)

    evaluator = Evaluator(store, s)
    [alert] = evaluator.evaluate(NOW).alerts
    assert alert.status == "firing"
    assert (alert.labels["key"], alert.labels["step"]) == (late, "requisition")
    assert alert.annotations["summary"] == f"procure_to_pay {late} likely to miss its SLA at Eastside Clinic"
    # Nine minutes on, its SLA has passed: it is no longer at risk but breached (other rules speak of that).
    assert [a.status for a in evaluator.evaluate(NOW + timedelta(minutes=9)).alerts] == ["resolved"]


@pytest.fixture
def server(chdb_path: Path) -> Iterator[LiveServer]:
    config = {
        "facilities": FACILITIES,
        "workflows": [WORKFLOW],
        "correlation": {"enabled": False, "settle": 0.5},
    }
    live = LiveServer(server_settings(chdb_path, **config)).start()
    yield live
    live.stop()


def test_api_items_carry_the_forecast_and_filter_on_at_risk(server: LiveServer) -> None:
    """Real OTLP through the SDK: 25 requisitions approved after 2..14 minutes and 3 after 40..50 (past the
    30-minute SLA), two waiting now (5 and 20 minutes); the API lists the one at risk (past the slowest wait
    that made it: the waits as long all missed), with its forecast, and says so in its OpenAPI document."""
    providers: dict[str, TracerProvider] = {}
    for service in ("erp", "approval-saas"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.otlp_http}/v1/traces")))
        providers[service] = provider
    now = time.time_ns()

    def span(service: str, name: str, minutes_ago: float, po: str) -> None:
        at = now - int(minutes_ago * MIN * 1e9)
        attributes = {"erp.po_number": po, "facility.id": "CLN-04"}
        tracer = providers[service].get_tracer("forecast")
        tracer.start_span(name, kind=SpanKind.SERVER, start_time=at, attributes=attributes).end(end_time=at + 10**6)

    late = "4500099002"
    for i in range(25):
        po = f"45000{i:05d}"
        span("erp", "POST /requisitions", 120 + i, po)
        span("approval-saas", "approve", 120 + i - (2 + i / 2), po)
    for i in range(3):
        po = f"45001{i:05d}"
        span("erp", "POST /requisitions", 200 + i, po)
        span("approval-saas", "approve", 200 + i - (40 + 5 * i), po)
    span("erp", "POST /requisitions", 5, "4500099001")
    span("erp", "POST /requisitions", 20, late)
    for provider in providers.values():
        provider.shutdown()
    server.flush()
    time.sleep(0.6)  # past the settle time
    assert server.runtime is not None
    Correlator(server.store, server.runtime.settings).run_once()

    api = f"{server.api}/api/v1/transactions"
    [item] = httpx.get(api, params={"at_risk": "true"}).json()["items"]
    assert item["key"] == late and item["state"] == "in_progress"
    forecast = item["forecast"]
    assert forecast["at_risk"] is True
    assert forecast["basis"].startswith("facility CLN-04: 28 waits after requisition in 7d, median 8m")
    assert "90% within the 30m SLA" in forecast["basis"]  # 25 of 28, and 1% of interpolation into the gap
    started = datetime.fromisoformat(item["updated_at"])
    # The median of the 28: the lower of the 14th and 15th, 8.5 minutes.
    assert abs((datetime.fromisoformat(forecast["next_step_eta"]) - started).total_seconds() - 8.5 * MIN) < 1
    assert datetime.fromisoformat(forecast["breach_at"]) - started == timedelta(minutes=30)
    # F⁻¹((F(30m) - 0.05) / 0.95): past the slowest that made it (14 minutes), before the fastest that missed (40).
    assert 14 * MIN < (datetime.fromisoformat(forecast["risk_at"]) - started).total_seconds() < 16 * MIN

    others = httpx.get(api, params={"at_risk": "false", "limit": 100}).json()["items"]
    by_key = {t["key"]: t for t in others}
    assert late not in by_key
    assert by_key["4500099001"]["forecast"]["at_risk"] is False
    assert by_key["4500000003"]["forecast"] is None  # approved: the workflow's waits after approval are unknown
    detail = httpx.get(f"{api}/procure_to_pay/4500099002").json()
    assert detail["forecast"] == forecast

    # The overview lists it among those at risk, and its drill-down says so, with the forecast's basis.
    dashboards = serve_dashboards(server)
    try:
        overview = json.dumps(dash_refresh(dashboards, "overview", {}))
        transaction = json.dumps(dash_refresh(dashboards, "transaction", {"workflow": "procure_to_pay", "key": late}))
    finally:
        dashboards.stop()
    assert "at-risk-transactions" in overview and late in overview and "4500099001" not in overview
    assert "transaction-forecast" in transaction and "At risk since" in transaction
    assert "facility CLN-04: 28 waits after requisition" in transaction

    spec = httpx.get(f"{server.api}/openapi.json").json()
    parameters = {p["name"] for p in spec["paths"]["/api/v1/transactions"]["get"]["parameters"]}
    assert "at_risk" in parameters
    assert {"next_step_eta", "breach_at", "at_risk", "basis"} <= set(
        spec["components"]["schemas"]["Forecast"]["properties"]
    )


def dash_refresh(dashboards: DashboardServer, page: str, state: dict[str, Any]) -> Any:
    """What a page's live region renders, as the browser's refresh callback gets it."""
    body = {
        "output": f"{page}-content.children",
        "outputs": {"id": f"{page}-content", "property": "children"},
        "inputs": [{"id": f"{page}-refresh", "property": "n_intervals", "value": 1}],
        "state": [{"id": f"{page}-state", "property": "data", "value": state}],
        "changedPropIds": [f"{page}-refresh.n_intervals"],
    }
    response = httpx.post(f"{dashboards.url}/dashboards/_dash-update-component", json=body, timeout=60)
    assert response.status_code == 200, response.text[:300]
    return response.json()["response"][f"{page}-content"]["children"]
