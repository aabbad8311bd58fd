"""An invoice-to-pay estate Triage has never met, scored like a new user would score it.

120 invoices drawn from a seeded mix of fates, each with its ground truth decided by construction:
other services and attribute names than the demo's, four spellings of every invoice number, a match
step that is either a three-way or a two-way match (`one_of`), a manager approval only for invoices of
$10,000 or more (`when`), payments handed to the bank gateway over a real RabbitMQ queue (message ids,
new traces on the consumer side), a nightly general-ledger batch posting many invoices in one span
(an OTLP array), engine logs with the invoice number in their text, a loop (sent back and approved
again), at-least-once delivery (one service exports every span twice), late batches and a decoy
failing all along. Precision and recall of stuck-work detection, state accuracy and cause accuracy
are printed and held to the issue's bar (≥ 0.98, ≥ 0.98, ≥ 0.98, ≥ 0.95)."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from correlator import Correlator
from tests.conftest import LiveServer, server_settings
from tests.correlator.test_estates import Estate, cycle, send_logs
from tests.correlator.test_scenarios import verdict

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
INVOICES = 120
BAR = {"precision": 0.98, "recall": 0.98, "state accuracy": 0.98, "cause accuracy": 0.95}
TIERS = {"critical": "UMC-ICU", "normal": "RUR-CLN"}

WORKFLOW: dict[str, Any] = {
    "name": "invoice_to_pay",
    "keys": ["ap.invoice_id", "vendor.invoice_ref", "gl.invoice_ids", "portal.invoice"],
    "key_patterns": [r"(?i)\binv[- ]?(\d{3,8})\b"],
    "key_format": {"strip_prefixes": ["INV-", "INV"], "strip_leading_zeros": True, "pad_to": 8, "case": "upper"},
    "facility": "hospital.code",
    "value": "ap.amount_usd",
    "steps": [
        {"name": "received", "match": {"service": "vendor-portal", "span_name": "POST /invoices"}},
        {"one_of": [
            {"name": "three_way_match", "match": {"service": "ap-engine", "span_name": "3-way match"},
             "sla": {"critical": "10m", "normal": "20m"}},
            {"name": "two_way_match", "match": {"service": "ap-engine", "span_name": "2-way match"},
             "sla": {"normal": "10m"}},
        ]},
        {"name": "manager_approval", "match": {"service": "approvals-cloud", "span_name": "approve invoice"},
         "human": True, "when": {"min_value": 10000}, "sla": {"critical": "1h", "normal": "2h"}},
        {"name": "scheduled", "match": {"service": "treasury", "kind": "producer"},
         "sla": {"critical": "15m", "normal": "30m"}},
        {"name": "paid", "match": {"service": "bank-gateway", "kind": "consumer"}, "sla": {"normal": "1h"}},
        {"name": "posted", "match": {"service": "gl-batch", "span_name": "post journal"}, "sla": {"normal": "1d"}},
    ],
    "terminal": ["posted"],
}  # fmt: skip

FATES = {  # fate → weight
    "completed": 4,
    "awaiting_manager": 1,
    "small_within_sla": 1,
    "small_overdue": 1,
    "payment_in_queue": 1,
    "payment_just_sent": 1,
    "bank_errors": 1,
    "awaiting_batch": 2,
    "validation_failed": 1,
    "sent_back": 1,
}


@dataclass
class Invoice:
    n: int
    fate: str
    tier: str
    amount: float

    @property
    def key(self) -> str:
        return f"{self.n:08d}"


def expected(inv: Invoice) -> tuple[str, str | None, str | None]:
    """The verdict each fate deserves, from docs/correlation.md."""
    return {
        "completed": ("completed", None, None),
        "awaiting_manager": ("stalled", "awaiting_approval", "approvals-cloud"),
        "small_within_sla": ("in_progress", None, None),
        "small_overdue": ("stalled", "unknown", "scheduled"),
        "payment_in_queue": ("blocked", "queue_backlog", "payments"),
        "payment_just_sent": ("in_progress", None, None),
        "bank_errors": ("blocked", "dependency_error", "bank-api"),
        "awaiting_batch": ("in_progress", None, None),
        "validation_failed": ("failed", "transformation_failed", "ap-engine"),
        "sent_back": ("in_progress", None, None),
    }[inv.fate]


class Payments:
    """The real RabbitMQ queue between treasury and the bank gateway."""

    def __init__(self) -> None:
        self.queue = f"payments.out.{uuid.uuid4().hex[:8]}"
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        self.channel = self.connection.channel()
        self.channel.queue_declare(queue=self.queue, durable=False, auto_delete=False)

    def publish(self, message_id: str) -> None:
        self.channel.basic_publish("", self.queue, b"payment", pika.BasicProperties(message_id=message_id))

    def take(self) -> str:
        method, properties, _ = self.channel.basic_get(self.queue, auto_ack=True)
        assert method is not None, "the payment is on the real queue"
        return str(properties.message_id)

    def close(self) -> None:
        self.channel.queue_delete(self.queue)
        self.connection.close()


@pytest.fixture
def estate(chdb_path: Path) -> Iterator[tuple[LiveServer, Estate, Correlator, Payments]]:
    payments = Payments()
    config = {
        "facilities": [
            {"id": TIERS["critical"], "name": "University Medical Center ICU", "criticality": "critical"},
            {"id": TIERS["normal"], "name": "Rural Clinic", "criticality": "normal"},
        ],
        "workflows": [WORKFLOW],
        "queues": [{"name": "payments", "kind": "rabbitmq", "url": AMQP, "queue": payments.queue, "interval": "1s"}],
        "correlation": {"enabled": False, "settle": 0.5},
    }
    server = LiveServer(server_settings(chdb_path, **config)).start()
    assert server.runtime is not None
    correlator = Correlator(server.store, server.runtime.settings)
    e = Estate(server)
    try:
        yield server, e, correlator, payments
    finally:
        e.close()
        server.stop()
        payments.close()


class InvoiceEstate:
    """The estate's services; minutes are before now."""

    def __init__(self, e: Estate, payments: Payments) -> None:
        self.e = e
        self.payments = payments
        self.unconsumed: list[str] = []  # published once every consumed payment has been taken
        # The vendor portal delivers every span twice (at-least-once).
        e.tracer("vendor-portal")
        provider = next(p for p in e.providers if p.resource.attributes.get("service.name") == "vendor-portal")
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{e.server.otlp_http}/v1/traces")))

    def received(self, inv: Invoice, minutes: float) -> None:
        attrs = {"portal.invoice": f"INV-{inv.n:08d}", "hospital.code": TIERS[inv.tier], "ap.amount_usd": inv.amount}
        self.e.span("vendor-portal", "POST /invoices", minutes, SpanKind.SERVER, **attrs)

    def matched(self, inv: Invoice, minutes: float, three_way: bool) -> None:
        name = "3-way match" if three_way else "2-way match"
        self.e.span("ap-engine", name, minutes, **{"ap.invoice_id": str(inv.n)})

    def approved(self, inv: Invoice, minutes: float, decision: str = "approved") -> None:
        attrs = {"vendor.invoice_ref": f"inv{inv.n:08d}", "approval.decision": decision}
        self.e.span("approvals-cloud", "approve invoice", minutes, SpanKind.SERVER, **attrs)

    def scheduled(self, inv: Invoice, minutes: float, taken: bool) -> str:
        """Treasury hands the payment to the bank gateway; one that will be `taken` is published at once
        (and taken next), one nobody takes after all the others, so that the gateway takes the right one."""
        message_id = f"pay-{inv.n}-{uuid.uuid4().hex[:6]}"
        attrs = {
            "ap.invoice_id": str(inv.n),
            "messaging.system": "rabbitmq",
            "messaging.destination.name": self.payments.queue,
            "messaging.message.id": message_id,
        }
        self.e.span("treasury", f"{self.payments.queue} publish", minutes, SpanKind.PRODUCER, **attrs)
        if taken:
            self.payments.publish(message_id)
        else:
            self.unconsumed.append(message_id)
        return message_id

    def paid(self, minutes: float) -> None:
        """The bank gateway takes a payment off the real queue; its span starts a new trace."""
        message_id = self.payments.take()
        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": self.payments.queue}
        self.e.span("bank-gateway", "payments process", minutes, SpanKind.CONSUMER, **attrs,
                    **{"messaging.message.id": message_id})  # fmt: skip

    def bank_call(self, inv: Invoice, minutes: float, status: int) -> None:
        error = f"bank-api returned {status}" if status >= 500 else None
        attrs = {"ap.invoice_id": str(inv.n), "peer.service": "bank-api", "http.response.status_code": status}
        self.e.span("treasury", "POST /bank/transfers", minutes, SpanKind.CLIENT, error=error, **attrs)

    def gl_batch(self, invoices: list[Invoice], minutes: float) -> None:
        keys = [f"INV{inv.n}" if i % 2 else f"{inv.n:08d}" for i, inv in enumerate(invoices)]
        self.e.span("gl-batch", "post journal", minutes, **{"gl.invoice_ids": keys, "gl.batch": "nightly"})


def play(inv: Invoice, s: InvoiceEstate, rng: random.Random, batch: list[Invoice], logs: list[str]) -> None:
    """Send the invoice's telemetry as its fate says; its batch posting is collected in `batch`."""
    big = inv.amount >= 10_000
    three_way = rng.random() < 0.5
    if inv.fate == "validation_failed":
        s.received(inv, 100)
        logs.append(f"validation failed for invoice INV-{inv.n:08d}: missing PO reference")
        return
    if inv.fate in ("small_within_sla", "small_overdue"):
        s.received(inv, 120)
        s.matched(inv, 4 if inv.fate == "small_within_sla" else 50, three_way)
        return
    if inv.fate == "awaiting_manager":
        s.received(inv, 400)
        s.matched(inv, 300, three_way)  # 5 h: past the manager's 1 h / 2 h
        return
    if inv.fate == "sent_back":
        s.received(inv, 400)
        s.matched(inv, 390, three_way)
        s.approved(inv, 380, "returned")
        s.matched(inv, 200, three_way)
        s.approved(inv, 5)  # approved again: scheduling is due in 15 / 30 min
        return
    s.received(inv, 600)
    s.matched(inv, 590, three_way)
    if big:
        s.approved(inv, 560)
    if inv.fate == "payment_in_queue":
        s.scheduled(inv, 200, taken=False)  # nobody takes it: 1 h to be paid is long over
        return
    if inv.fate == "payment_just_sent":
        s.scheduled(inv, 5, taken=False)
        return
    s.scheduled(inv, 550, taken=True)
    s.paid(540)
    if inv.fate == "bank_errors":
        s.bank_call(inv, 30, 503)
        s.bank_call(inv, 20, 503)
        return
    s.bank_call(inv, 535, 201)
    if inv.fate == "completed":
        batch.append(inv)


def score(
    truth: dict[str, tuple[str, str | None, str | None]], got: dict[str, tuple[str, str | None, str | None]]
) -> dict[str, float]:
    stuck = {"stalled", "blocked", "failed"}
    tp = [k for k in truth if truth[k][0] in stuck and got.get(k, ("",))[0] in stuck]
    said = [k for k in got if got[k][0] in stuck]
    real = [k for k in truth if truth[k][0] in stuck]
    return {
        "precision": len(tp) / max(len(said), 1),
        "recall": len(tp) / max(len(real), 1),
        "state accuracy": sum(got.get(k, ("",))[0] == v[0] for k, v in truth.items()) / len(truth),
        "cause accuracy": sum(got[k][1:] == truth[k][1:] for k in tp) / max(len(tp), 1),
    }


def test_an_unseen_invoice_estate_scores_above_the_bar(
    estate: tuple[LiveServer, Estate, Correlator, Payments], capsys: pytest.CaptureFixture[str]
) -> None:
    server, e, correlator, payments = estate
    rng = random.Random(2026)
    fates, weights = zip(*FATES.items(), strict=True)
    invoices = []
    for i in range(INVOICES):
        fate = rng.choices(fates, weights)[0] if i >= len(FATES) else fates[i]  # every fate at least once
        small, large = rng.uniform(200, 9_000), rng.uniform(10_000, 400_000)
        amount = {"awaiting_manager": large, "small_within_sla": small, "small_overdue": small}.get(
            fate, rng.choice([small, large])
        )
        n = rng.randrange(100, 99_999_999) if i else 7
        invoices.append(Invoice(n, fate, rng.choice(["critical", "normal"]), round(amount, 2)))
    assert len({inv.n for inv in invoices}) == INVOICES
    s = InvoiceEstate(e, payments)
    batch: list[Invoice] = []
    logs: list[str] = []
    for inv in invoices:
        play(inv, s, rng, batch, logs)
    send_logs(server, "ap-engine", logs, logging.ERROR)
    for message_id in s.unconsumed:
        payments.publish(message_id)
    for _ in range(10):  # a decoy: the inventory service fails all along
        e.span("inventory-api", "GET /stock", 3, SpanKind.SERVER, error="inventory db down")
    # The nightly GL batch posts the completed invoices in three spans; the last arrives late.
    thirds = [batch[i::3] for i in range(3)]
    s.gl_batch(thirds[0], 60)
    s.gl_batch(thirds[1], 59)
    deadline = time.time() + 15
    while time.time() < deadline and not server.store.command("SELECT count() FROM queue_lag"):
        time.sleep(0.2)  # the queue has been polled once
    cycle(server, correlator)
    s.gl_batch(thirds[2], 58)  # late
    cycle(server, correlator)
    got_items = cycle(server, correlator)

    truth = {inv.key: expected(inv) for inv in invoices}
    got = {k: verdict(v) for k, v in got_items.items()}
    figures = score(truth, got)
    wrong = [f"{inv.key} {inv.fate} {inv.tier} ${inv.amount:,.0f}: truth {truth[inv.key]}, got {got.get(inv.key)}"
             for inv in invoices if got.get(inv.key) != truth[inv.key]]  # fmt: skip
    with capsys.disabled():
        counts = {f: sum(inv.fate == f for inv in invoices) for f in FATES}
        print(f"\ninvoice estate, {INVOICES} invoices {counts}:")
        print("  " + ", ".join(f"{name} {value:.3f}" for name, value in figures.items()))
    assert set(got) == set(truth), "one transaction per invoice, in canonical form, whatever the spelling"
    for name, bar in BAR.items():
        assert figures[name] >= bar, f"{name} {figures[name]:.3f} < {bar}\n" + "\n".join(wrong)
    assert not wrong, "\n".join(wrong)
