"""Supplier onboarding: application on the supplier portal → compliance review (a person, in the
approval SaaS) → vendor created in the ERP → activated on the portal.

Reviewers fall behind (a review waits past its SLA: awaiting approval); the integration engine's
`vendor-master` channel rejects bad bank details (an OTLP log with the channel, in the trace).
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from simulator.brokers import Delivery
from simulator.estate import Estate
from simulator.flows.flow import RETRY, Flow
from simulator.transactions import Transaction

_CATEGORIES = ["medical-surgical", "pharmacy", "laboratory", "linen", "facilities", "biomedical"]


class SupplierOnboarding(Flow):
    name = "supplier_onboarding"

    def describe(self, run: Estate, tx: Transaction) -> None:
        tx.data["category"] = run.rng.choice(_CATEGORIES)

    def _supplier(self, tx: Transaction) -> dict[str, object]:
        return {"supplier.id": tx.key, "facility.id": tx.facility}

    def begin(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._supplier(tx), "supplier.category": tx.data["category"], "http.response.status_code": 201}
        application = run.span(tx, "supplier-portal", "POST /suppliers", SpanKind.SERVER, attrs, duration_ms=50)
        run.publish(tx, "onboarding", application, "open_review", "supplier-portal")

    def open_review(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """The approval SaaS takes the application and queues it for a compliance reviewer."""
        run.consume(tx, delivery, "approval-saas")
        if delivery.redelivered:
            return
        if run.happens(tx, "review_pending", live=False):
            return
        sla = self.sla("compliance_review", run.criticality(tx))
        behind = run.chance(self.scenario.chances.reviewer_backlog)
        delay = run.rng.uniform(1.5, 2.2) * sla if behind else self.pace(run, tx, "compliance_review")
        run.later(delay, lambda: self._review(run, tx))

    def _review(self, run: Estate, tx: Transaction) -> None:
        if run.fault("outage", "approval-saas") is not None:
            run.later(RETRY, lambda: self._review(run, tx))
            return
        attrs = {**self._supplier(tx), "approval.decision": "approved"}
        run.span(tx, "approval-saas", "review supplier", SpanKind.SERVER, attrs, duration_ms=20)
        run.later(self.pace(run, tx, "vendor_created"), lambda: self._create_vendor(run, tx))

    def _create_vendor(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._supplier(tx), "http.response.status_code": 201}
        run.span(tx, "erp-procurement", "POST /vendors", SpanKind.SERVER, attrs, duration_ms=40)
        run.later(self.pace(run, tx, "vendor_activated"), lambda: self._activate(run, tx))

    def _activate(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._supplier(tx), "channel": "vendor-master"}
        sync = run.span(tx, "integration-engine", "vendor-master sync", SpanKind.INTERNAL, attrs, duration_ms=30)
        invalid = run.chance(self.scenario.chances.vendor_validation_error)
        if run.happens(tx, "validation_failed", live=invalid):
            body = f"validation failed for {tx.key}: bank account check digits invalid"
            run.telemetry.log(
                tx, "integration-engine", run.at_ns + 3_000_000, "ERROR", body, {"channel": "vendor-master"}, sync
            )
            return
        activated = {**self._supplier(tx), "http.response.status_code": 200}
        run.span(tx, "supplier-portal", "activate supplier", SpanKind.SERVER, activated, sync, offset_ms=6)
