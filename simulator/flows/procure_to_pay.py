"""Procure-to-pay: requisition → budget approval → (capital review, large POs only) → PO created →
sent to supplier → goods received (at the facility's dock, or by the central warehouse's receiving
batch) → invoice matched → posted.

The ERP's approval connector takes approval requests off `wf.approvals` and opens a task in the
approval SaaS (503s during its outage, retried); a person approves it (not while on leave); a PO
worth the capital threshold or more waits for the capital committee (not while its chair is on
leave); the integration engine's `supplier-orders` channel maps the PO for the supplier portal (a
supplier's messages fail mapping: a Mirth log line, no trace id, the PO number in its text). Goods
for the central warehouse are received by a batch job that posts every PO waiting, in one span
whose `receiving.po_numbers` attribute lists them all.
"""

from __future__ import annotations

import functools

from opentelemetry.trace import SpanKind

from simulator.brokers import Delivery
from simulator.estate import Estate
from simulator.flows.flow import RECHECK, RETRY, Flow, amount
from simulator.scenario import Scenario
from simulator.telemetry import SpanRef
from simulator.transactions import Transaction
from triage.settings import Settings

_MEDIAN = {"critical": 24_000.0, "high": 9_000.0, "normal": 2_500.0}
_APPROVERS = ["j.alvarez", "m.chen", "r.okafor", "s.lindqvist", "d.patel"]
_TRANSFORMER = "com.mirth.connect.server.transformers.JavaScriptTransformer"
_DISPATCHER = "com.mirth.connect.connectors.http.HttpDispatcher"
COMMITTEE = "capital-committee"
WAREHOUSE_SHARE = 0.4  # POs delivered to the central warehouse, received by its batch
BATCH_EVERY = 480.0  # simulated seconds between runs of the receiving batch ("nightly", compressed)


class ProcureToPay(Flow):
    name = "procure_to_pay"

    def __init__(self, scenario: Scenario, business: Settings) -> None:
        super().__init__(scenario, business)
        review = next(s for s in self.workflow.steps if s.name == "capital_review")
        assert review.when is not None and review.when.min_value is not None
        self.capital_threshold = review.when.min_value
        # POs at the central warehouse's dock waiting for the next receiving batch, per estate (live, history).
        self._dock: dict[int, list[Transaction]] = {}

    def describe(self, run: Estate, tx: Transaction) -> None:
        tx.value = amount(run, _MEDIAN[run.criticality(tx)], 0.9)
        tx.data["supplier"] = run.rng.choice(self.scenario.suppliers)
        tx.data["warehouse"] = run.chance(WAREHOUSE_SHARE)

    def history_fate(self, run: Estate, tx: Transaction, age: float) -> str:
        if tx.facility == self.scenario.target_of("approver_on_leave") and age <= self.scenario.history_of(
            "approver_on_leave"
        ):
            return "approval_pending"
        if tx.data["supplier"] == self.scenario.target_of("mapping_failure") and age <= self.scenario.history_of(
            "mapping_failure"
        ):
            return "mapping_failed"
        return super().history_fate(run, tx, age)

    def _erp(self, tx: Transaction) -> dict[str, object]:
        return {
            "erp.po_number": tx.key,
            "facility.id": tx.facility,
            "erp.amount": tx.value,
            "erp.supplier": tx.data["supplier"],
            "erp.cost_center": f"CC-{tx.facility}",
        }

    def begin(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._erp(tx), "http.request.method": "POST", "http.response.status_code": 201}
        requisition = run.span(tx, "erp-procurement", "POST /requisitions", SpanKind.SERVER, attrs, duration_ms=40)
        run.publish(tx, "approvals", requisition, "request_approval", "erp-procurement")

    def request_approval(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """The ERP's approval connector: one approval request off the queue, into the approval SaaS."""
        consumer = run.consume(tx, delivery, "erp-procurement", {"erp.connector": "approval-connector"})
        if not delivery.redelivered:
            self._open_task(run, tx, consumer)

    def _open_task(self, run: Estate, tx: Transaction, consumer: SpanRef) -> None:
        outage = run.fault("outage", "approval-saas")
        down = run.happens(tx, "approval_saas_down", live=outage is not None and run.chance(outage.error_rate))
        status = (outage.status if outage else 503) if down else 201
        attrs = {"peer.service": "approval-saas", "http.request.method": "POST", "http.response.status_code": status}
        error = f"approval-saas returned {status} Service Unavailable" if down else None
        call = run.span(tx, "erp-procurement", "POST /approval-requests", SpanKind.CLIENT, attrs, consumer, error=error)
        if down:
            if run.retries(tx):
                run.later(RETRY, lambda: self._open_task(run, tx, consumer))
            return
        task = {"po.number": tx.key, "facility.id": tx.facility, "http.response.status_code": 201}
        run.span(
            tx, "approval-saas", "POST /approval-requests", SpanKind.SERVER, task, call, offset_ms=4, duration_ms=9
        )
        self._await_approval(run, tx)

    def _await_approval(self, run: Estate, tx: Transaction) -> None:
        away = run.fault("approver_on_leave", tx.facility) is not None
        if run.happens(tx, "approval_pending", live=away):
            if run.retries(tx):
                run.later(RECHECK, lambda: self._await_approval(run, tx))
            return
        run.later(self.pace(run, tx, "budget_approval"), lambda: self._approve(run, tx))

    def _approve(self, run: Estate, tx: Transaction) -> None:
        if run.fault("outage", "approval-saas") is not None:  # nobody can approve while the SaaS is down
            run.later(RETRY, lambda: self._approve(run, tx))
            return
        attrs = {
            "po.number": tx.key,
            "facility.id": tx.facility,
            "approval.approver": run.rng.choice(_APPROVERS),
            "approval.decision": "approved",
        }
        run.span(tx, "approval-saas", "approve", SpanKind.SERVER, attrs, duration_ms=15)
        if tx.value >= self.capital_threshold:
            run.later(self.pace(run, tx, "capital_review"), lambda: self._await_committee(run, tx))
        else:
            run.later(self.pace(run, tx, "po_created"), lambda: self._create_po(run, tx))

    def _await_committee(self, run: Estate, tx: Transaction) -> None:
        """A large PO goes to the capital committee, which does not sit while its chair is on leave."""
        away = run.fault("approver_on_leave", COMMITTEE) is not None
        if run.happens(tx, "capital_pending", live=away):
            if run.retries(tx):
                run.later(RECHECK, lambda: self._await_committee(run, tx))
            return
        attrs = {
            "po.number": tx.key,
            "facility.id": tx.facility,
            "capital.amount": tx.value,
            "capital.decision": "approved",
        }
        run.span(tx, COMMITTEE, "review capital request", SpanKind.SERVER, attrs, duration_ms=12)
        run.later(self.pace(run, tx, "po_created"), lambda: self._create_po(run, tx))

    def _create_po(self, run: Estate, tx: Transaction) -> None:
        po = run.span(tx, "erp-procurement", "create PO", SpanKind.INTERNAL, self._erp(tx), duration_ms=30)
        run.publish(tx, "po-outbound", po, "send_order", "erp-procurement")

    def send_order(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """The integration engine's supplier-orders channel: map the PO and post it to the supplier portal."""
        consumer = run.consume(tx, delivery, "integration-engine", {"channel": "supplier-orders"})
        supplier = tx.data["supplier"]
        if delivery.redelivered:
            run.telemetry.mirth(
                tx,
                run.at_ns + 5_000_000,
                "INFO",
                "supplier-orders",
                _DISPATCHER,
                f"duplicate message for PO {tx.key} ignored",
            )
            return
        broken = run.fault("mapping_failure", supplier) is not None
        if run.happens(tx, "mapping_failed", live=broken):
            message = f"mapping failed for PO {tx.key} ({supplier}): missing required field UOM on line 2"
            run.telemetry.mirth(tx, run.at_ns + 8_000_000, "ERROR", "supplier-orders", _TRANSFORMER, message)
            return
        attrs = {"channel": "supplier-orders"}
        run.span(tx, "integration-engine", "supplier-orders transform", SpanKind.INTERNAL, attrs, consumer, offset_ms=2)
        self._post_order(run, tx, consumer)

    def _post_order(self, run: Estate, tx: Transaction, consumer: SpanRef) -> None:
        failing = run.chance(self.scenario.chances.supplier_portal_error)
        down = run.happens(tx, "supplier_down", live=failing)
        status = 502 if down else 201
        attrs = {
            "peer.service": "supplier-portal",
            "channel": "supplier-orders",
            "http.request.method": "POST",
            "http.response.status_code": status,
        }
        error = "supplier-portal returned 502 Bad Gateway" if down else None
        call = run.span(
            tx,
            "integration-engine",
            "POST /orders",
            SpanKind.CLIENT,
            attrs,
            consumer,
            error=error,
            offset_ms=10,
            duration_ms=60,
        )
        if down:
            if run.retries(tx):
                run.later(RETRY, lambda: self._post_order(run, tx, consumer))
            return
        run.telemetry.mirth(
            tx,
            run.at_ns + 75_000_000,
            "INFO",
            "supplier-orders",
            _DISPATCHER,
            f"PO {tx.key} sent to {tx.data['supplier']}",
        )
        order = {"po.number": tx.key, "facility.id": tx.facility, "http.response.status_code": 201}
        run.span(tx, "supplier-portal", "POST /orders", SpanKind.SERVER, order, call, offset_ms=14, duration_ms=45)
        arrive = self._to_warehouse if tx.data.get("warehouse") else self._receive
        run.later(self.pace(run, tx, "goods_received"), lambda: arrive(run, tx))

    def _to_warehouse(self, run: Estate, tx: Transaction) -> None:
        """The goods reach the central warehouse's dock; the next receiving batch posts them."""
        dock = self._dock.setdefault(id(run), [])
        if not dock:  # the first on the dock: the batch runs BATCH_EVERY later and takes all that came
            run.later(BATCH_EVERY, lambda: self._receiving_batch(run))
        dock.append(tx)

    def _receiving_batch(self, run: Estate) -> None:
        """One span receives every PO on the dock: `receiving.po_numbers` lists them (an OTLP array)."""
        batch = self._dock.pop(id(run), [])
        if not batch:
            return
        attrs = {
            "receiving.po_numbers": [tx.key for tx in batch],
            "receiving.count": len(batch),
            "receiving.site": "central-warehouse",
        }
        run.batch_span(batch, "receiving-batch", "post receipts", SpanKind.INTERNAL, attrs, duration_ms=80)
        for tx in batch:
            run.later(self.pace(run, tx, "invoice_matched"), functools.partial(self._match, run, tx))

    def _receive(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._erp(tx), "http.response.status_code": 201, "inv.dock": f"{tx.facility}-DOCK"}
        run.span(tx, "erp-inventory", "POST /receipts", SpanKind.SERVER, attrs, late=run.late())
        run.later(self.pace(run, tx, "invoice_matched"), lambda: self._match(run, tx))

    def _match(self, run: Estate, tx: Transaction) -> None:
        run.span(tx, "erp-finance", "match invoice", SpanKind.INTERNAL, self._erp(tx), duration_ms=25)
        run.later(self.pace(run, tx, "posted"), lambda: self._post(run, tx))

    def _post(self, run: Estate, tx: Transaction) -> None:
        run.span(tx, "erp-finance", "post voucher", SpanKind.INTERNAL, self._erp(tx), duration_ms=25)
