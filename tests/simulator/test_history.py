"""The workflows played on the history clock, into in-memory exporters: every historic transaction
ends as its fate says, in the states and causes Triage names, and sends real OpenTelemetry data."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import date

import httpx
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from simulator.brokers import MemoryBroker
from simulator.config import business_settings, demo_config
from simulator.estate import Cast
from simulator.faults import FaultSchedule
from simulator.flows import FLOWS
from simulator.history import HistoryEstate
from simulator.observe import Observer
from simulator.scenario import Scenario, load_scenario
from simulator.telemetry import Exporters, Telemetry
from simulator.transactions import Keys, Transaction, Transactions
from simulator.truth import HealthLedger, Judge
from triage.settings import Settings

SPEED = 10.0
EXPECTED = {
    "completed": ("completed", None, None),
    "approval_pending": ("stalled", "awaiting_approval", "approval-saas"),
    "mapping_failed": ("failed", "transformation_failed", "supplier-orders"),
    "supplier_down": ("blocked", "dependency_error", "supplier-portal"),
    "parked": ("blocked", "queue_backlog", "invoice-retries"),
    "ledger_failed": ("blocked", "dependency_error", "ledger-api"),
    "lost": ("blocked", "queue_backlog", "replenishment"),
    "schema_failed": ("failed", "transformation_failed", "roster-sync"),
    "dropped": ("stalled", "unknown", "roster_loaded"),
    "review_pending": ("stalled", "awaiting_approval", "approval-saas"),
    "validation_failed": ("failed", "transformation_failed", "vendor-master"),
}


def play_history(scenario: Scenario, settings: Settings, hours: float = 12):  # type: ignore[no-untyped-def]
    """The demo's history of `hours` played into in-memory exporters: (estate, transactions, spans, logs,
    raw log lines, broker, health ledger, start of the history)."""
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    raw_lines: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        raw_lines.extend(request.content.decode().splitlines())
        return httpx.Response(200, json={"source": "mirth", "lines": 0, "records": 0, "unparsed": 0})

    health = HealthLedger(settings.correlation.health_window, 0.2, 3)
    telemetry = Telemetry(
        "http://otlp",
        "http://api",
        None,
        Observer(settings),
        health,
        Exporters(spans=lambda: spans, logs=lambda: logs),
        httpx.MockTransport(api),
    )
    transactions = Transactions()
    business = business_settings()
    flows = {f.name: f(scenario, business) for f in FLOWS}
    destinations = {q.name: q.queue or q.name for q in settings.queues}
    broker = MemoryBroker(destinations, lambda delivery: False)
    now = time.time()
    cast = Cast(telemetry, transactions, scenario, business, flows, Keys(random.Random(3)))
    history = HistoryEstate(cast, random.Random(3), broker, hours * 3600, now, SPEED, FaultSchedule(scenario, 3))
    while not history.done:
        history.play(1000)
    telemetry.flush()
    return history, transactions, spans, logs, raw_lines, broker, health, now


def test_every_historic_transaction_ends_as_its_fate_says() -> None:
    settings = Settings.model_validate(demo_config(SPEED, "t", None, date(2027, 1, 14)))
    scenario = load_scenario()
    for outcomes in scenario.backfill.outcomes.values():  # every bad ending, often enough to see
        for fate in outcomes:
            outcomes[fate] = 0.15
    scenario.chances.reviewer_backlog = 0.0  # no review held past its SLA: every completion is healthy
    scenario.faults = [f for f in scenario.faults if f.end is None]  # no recurring fault to wait out either
    history, transactions, spans, logs, raw_lines, broker, health, now = play_history(scenario, settings)

    judge = Judge(settings, health)
    fates: Counter[str] = Counter()
    later = time.time()
    for tx in transactions:
        expected = judge.expected(tx.workflow, tx.observations, later, later)
        assert expected is not None
        assert (expected.state, expected.cause_kind, expected.component) == EXPECTED[tx.fate], (
            tx.workflow,
            tx.key,
            tx.fate,
        )
        fates[tx.fate] += 1
    assert set(fates) == set(EXPECTED), f"every fate is played: {fates}"
    # At the run's speed, as live traffic: a healthy transaction ends within its workflow's target
    # (the sum of its step SLAs, which the demo divides by --speed too), as the executive report judges.
    late = [(tx.key, cycle, target) for tx, cycle, target in completions(settings, transactions) if cycle > target]
    assert fates["completed"] > 300 and not late, f"historic transactions past their targets: {late[:5]}"
    assert len(transactions) == history.total > 500
    # Real telemetry: spans from every service of the estate, with past timestamps...
    sent = spans.get_finished_spans()
    assert {s.resource.attributes["service.name"] for s in sent} >= {
        "erp-procurement",
        "approval-saas",
        "supplier-portal",
        "integration-engine",
        "erp-finance",
        "ledger-api",
        "erp-inventory",
        "supply-cabinets",
        "workforce-scheduling",
        "erp-workforce",
    }
    assert min(s.start_time for s in sent) < (now - 11 * 3600) * 1e9
    # ...context carried across queues (a consumer continues the producer's trace or links to it)...
    consumers = [s for s in sent if s.kind.name == "CONSUMER"]
    assert any(s.links for s in consumers) and any(s.parent for s in consumers)
    # ...Mirth log lines without trace ids, OTLP logs with a channel, parked messages really queued.
    assert any(
        "mapping failed for PO" in line and "[Channel Dispatch Thread on supplier-orders (" in line
        for line in raw_lines
    )
    assert {r.log_record.attributes["channel"] for r in logs.get_finished_logs()} >= {"roster-sync", "vendor-master"}
    parked = next(s for s in broker.samples() if s["name"] == "invoice-retries")
    assert parked["backlog"] == fates["parked"]


def test_history_meets_the_faults_that_recur_every_cycle() -> None:
    """The scripted faults that repeat every cycle were on in the past too: history waits them out as live
    traffic does (the stopped consumer's messages are taken when it is back, what the outage or the slow
    ledger broke is retried, the committee is waited for), so some transactions complete late, every one
    still ends as its fate says, and no wait outlasts the longest fault by much."""
    settings = Settings.model_validate(demo_config(SPEED, "t", None, date(2027, 1, 14)))
    scenario = load_scenario()
    history, transactions, spans, *_, health, now = play_history(scenario, settings, hours=6)
    judge = Judge(settings, health)
    later = time.time()
    for tx in transactions:
        expected = judge.expected(tx.workflow, tx.observations, later, later)
        assert expected is not None and (expected.state, expected.cause_kind) == EXPECTED[tx.fate][:2], (
            tx.workflow, tx.key, tx.fate,
        )  # fmt: skip
    waits = [w for tx in transactions if tx.fate == "completed" for w in judge.waits(tx.workflow, tx.observations)]
    late = [w for w in waits if w.ended is not None and w.ended > w.due]
    assert waits and all(w.ended is not None for w in waits)
    assert 0.01 < len(late) / len(waits) < 0.5, f"{len(late)} of {len(waits)} waits late"
    longest = max(scenario.faults, key=lambda f: (f.end or 0) - f.start)
    worst = max((w.ended - w.started) * SPEED for w in waits if w.ended is not None)
    assert worst < (longest.end or 0) - longest.start + 600, f"a historic wait of {worst:.0f} simulated seconds"
    # The faults left their telemetry in history: the outage's 503s, the slow ledger's timeouts.
    statuses = Counter(s.attributes.get("http.response.status_code") for s in spans.get_finished_spans())
    assert statuses[503] > 0 and statuses[504] > 0
    # Faults show in history on the live run's cycle: every historic 503 from approval-saas fell in its window.
    schedule = FaultSchedule(scenario, 3)
    outage = [s for s in spans.get_finished_spans() if s.attributes.get("http.response.status_code") == 503
              and s.attributes.get("peer.service") == "approval-saas"]  # fmt: skip
    assert outage and all(
        schedule.recurring("outage", "approval-saas", (s.start_time / 1e9 - now) * SPEED) is not None for s in outage
    )


def completions(settings: Settings, transactions: Transactions) -> list[tuple[Transaction, float, float]]:
    """Each completed transaction, its cycle time (first event to terminal step) and its end-to-end target."""
    workflows = {w.name: w for w in settings.workflows}
    tiers = {f.id: f.criticality for f in settings.facilities}
    out = []
    for tx in transactions:
        wf = workflows[tx.workflow]
        done = [o.at for o in tx.observations if o.progress and o.step in wf.terminal]
        if tx.fate != "completed" or not done:
            continue
        tier = tiers.get(tx.facility, "normal")
        target = sum(s.sla.for_criticality(tier) or 0.0 for s in wf.steps if s.sla)
        out.append((tx, min(done) - min(o.at for o in tx.observations), target))
    return out
