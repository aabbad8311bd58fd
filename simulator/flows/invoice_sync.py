"""Invoice sync: a supplier's invoice → mapped by the integration engine → recorded in accounts
payable → posted to the general ledger, ahead of the period close.

The engine's `invoice-inbound` channel consumes `ap.invoices` (paused for a while: a backlog);
the ledger API slows down near the period close and times out postings (retried); in history, a
few invoices were parked in `ap.invoices.retry`, which nothing consumes.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from simulator.brokers import Delivery
from simulator.estate import Estate
from simulator.flows.flow import RETRY, Flow, amount
from simulator.telemetry import SpanRef
from simulator.transactions import Transaction

TIMEOUT = 120.0  # simulated seconds before a ledger posting gives up
SLOW = 160.0  # simulated seconds a posting takes while the ledger is slow
_ROUTER = "com.mirth.connect.server.controllers.DonkeyEngineController"


class InvoiceSync(Flow):
    name = "invoice_sync"

    def describe(self, run: Estate, tx: Transaction) -> None:
        tx.value = amount(run, 6_500.0, 1.0)
        tx.data["supplier"] = run.rng.choice(self.scenario.suppliers)

    def _invoice(self, tx: Transaction) -> dict[str, object]:
        return {"ap.invoice_number": tx.key, "facility.id": tx.facility, "ap.amount": tx.value}

    def begin(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._invoice(tx), "ap.supplier": tx.data["supplier"], "http.response.status_code": 201}
        received = run.span(tx, "supplier-portal", "POST /invoices", SpanKind.SERVER, attrs, duration_ms=35)
        run.publish(tx, "invoices", received, "map_invoice", "supplier-portal")

    def map_invoice(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """The engine's invoice-inbound channel: map the invoice for accounts payable."""
        consumer = run.consume(tx, delivery, "integration-engine", {"channel": "invoice-inbound"})
        if delivery.redelivered:
            run.telemetry.mirth(
                tx, run.at_ns + 4_000_000, "INFO", "invoice-inbound", _ROUTER, f"duplicate of {tx.key} ignored"
            )
            return
        if run.happens(tx, "parked", live=False):
            note = f"invoice {tx.key} parked for retry: supplier master data missing"
            run.telemetry.mirth(tx, run.at_ns + 4_000_000, "WARN", "invoice-inbound", _ROUTER, note)
            run.publish(tx, "invoice-retries", consumer, "never", "integration-engine", offset_ms=6)
            return
        attrs = {**self._invoice(tx), "channel": "invoice-inbound"}
        mapped = run.span(
            tx, "integration-engine", "transform invoice", SpanKind.INTERNAL, attrs, consumer, offset_ms=2
        )
        run.later(self.pace(run, tx, "ap_recorded"), lambda: self._record(run, tx, mapped))

    def _record(self, run: Estate, tx: Transaction, mapped: SpanRef) -> None:
        attrs = {"peer.service": "erp-finance", "channel": "invoice-inbound", "http.response.status_code": 201}
        call = run.span(tx, "integration-engine", "POST /ap/invoices", SpanKind.CLIENT, attrs, mapped, duration_ms=50)
        recorded = {**self._invoice(tx), "http.response.status_code": 201}
        run.span(tx, "erp-finance", "POST /ap/invoices", SpanKind.SERVER, recorded, call, offset_ms=5, duration_ms=35)
        run.later(self.pace(run, tx, "ledger_posted"), lambda: self._post(run, tx))

    def _post(self, run: Estate, tx: Transaction) -> None:
        """erp-finance's posting job calls the ledger API: quick, or slow and sometimes timing out."""
        slow = run.fault("slow_dependency", "ledger-api")
        timeout = run.happens(tx, "ledger_failed", live=slow is not None and run.chance(slow.error_rate))
        started = run.at_ns
        if timeout:
            run.later(TIMEOUT, lambda: self._timed_out(run, tx, started))
        else:
            latency = SLOW * run.rng.uniform(0.7, 1.3) if slow else 0.4
            run.later(latency, lambda: self._posted(run, tx, started))

    def _call(self, tx: Transaction, status: int) -> dict[str, object]:
        return {
            "ap.invoice_number": tx.key,
            "peer.service": "ledger-api",
            "http.request.method": "POST",
            "http.response.status_code": status,
        }

    def _timed_out(self, run: Estate, tx: Transaction, started: int) -> None:
        error = "deadline exceeded after 30s waiting for ledger-api"
        call = run.span(
            tx,
            "erp-finance",
            "POST /journal-entries",
            SpanKind.CLIENT,
            self._call(tx, 504),
            start_ns=started,
            error=error,
        )
        entry = {**self._invoice(tx), "http.response.status_code": 503, "gl.period": "current"}
        run.span(
            tx,
            "ledger-api",
            "POST /journal-entries",
            SpanKind.SERVER,
            entry,
            call,
            start_ns=started + 4_000_000,
            error="lock wait timeout exceeded on journal batch",
        )
        if run.retries(tx):
            run.later(RETRY, lambda: self._post(run, tx))

    def _posted(self, run: Estate, tx: Transaction, started: int) -> None:
        call = run.span(
            tx, "erp-finance", "POST /journal-entries", SpanKind.CLIENT, self._call(tx, 201), start_ns=started
        )
        entry = {**self._invoice(tx), "http.response.status_code": 201, "gl.period": "current"}
        run.span(tx, "ledger-api", "POST /journal-entries", SpanKind.SERVER, entry, call, start_ns=started + 4_000_000)

    def never(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """Nothing consumes the retry queue; a message there waits for a person."""
