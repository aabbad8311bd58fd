"""Workforce sync: a roster published by the scheduling SaaS → mapped by the integration engine
→ loaded into the ERP's workforce module.

The engine's `roster-sync` channel rejects rosters that fail schema validation (an OTLP log in the
trace); the workforce API has random outages (500s, retried); now and then a roster is lost
without any error (stalled, cause unknown).
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from simulator.brokers import Delivery
from simulator.estate import Estate
from simulator.flows.flow import RETRY, Flow
from simulator.telemetry import SpanRef
from simulator.transactions import Transaction

_UNITS = ["nursing", "respiratory", "pharmacy", "perioperative", "environmental services", "laboratory"]


class WorkforceSync(Flow):
    name = "workforce_sync"

    def describe(self, run: Estate, tx: Transaction) -> None:
        tx.data["unit"] = run.rng.choice(_UNITS)
        tx.data["cost_center"] = run.rng.randrange(1000, 9999)

    def _roster(self, tx: Transaction) -> dict[str, object]:
        return {"hr.employee_id": tx.key, "facility.id": tx.facility}

    def begin(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._roster(tx), "hr.unit": tx.data["unit"], "http.response.status_code": 200}
        published = run.span(tx, "workforce-scheduling", "publish roster", SpanKind.SERVER, attrs, duration_ms=25)
        run.publish(tx, "roster", published, "map_roster", "workforce-scheduling")

    def map_roster(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """The engine's roster-sync channel: validate and map the roster for the ERP."""
        consumer = run.consume(tx, delivery, "integration-engine", {"channel": "roster-sync"})
        if delivery.redelivered:
            return
        if run.happens(tx, "schema_failed", live=run.chance(self.scenario.chances.roster_schema_error)):
            body = f"schema validation failed for {tx.key}: unknown cost centre {tx.data['cost_center']}"
            run.telemetry.log(
                tx, "integration-engine", run.at_ns + 3_000_000, "ERROR", body, {"channel": "roster-sync"}, consumer
            )
            return
        attrs = {**self._roster(tx), "channel": "roster-sync"}
        mapped = run.span(tx, "integration-engine", "transform roster", SpanKind.INTERNAL, attrs, consumer, offset_ms=2)
        if run.happens(tx, "dropped", live=run.chance(self.scenario.chances.silent_drop)):
            return  # lost without a trace of an error
        run.later(self.pace(run, tx, "roster_loaded"), lambda: self._load(run, tx, mapped))

    def _load(self, run: Estate, tx: Transaction, mapped: SpanRef) -> None:
        outage = run.fault("outage", "erp-workforce")
        down = outage is not None and run.chance(outage.error_rate)
        status = outage.status if outage is not None and down else 201
        attrs = {"peer.service": "erp-workforce", "channel": "roster-sync", "http.response.status_code": status}
        error = f"erp-workforce returned {status} Internal Server Error" if down else None
        call = run.span(
            tx, "integration-engine", "POST /rosters", SpanKind.CLIENT, attrs, mapped, error=error, duration_ms=40
        )
        if down:
            if run.retries(tx):
                run.later(RETRY, lambda: self._load(run, tx, mapped))
            return
        loaded = {**self._roster(tx), "http.response.status_code": 201}
        run.span(tx, "erp-workforce", "POST /rosters", SpanKind.SERVER, loaded, call, offset_ms=4, duration_ms=30)
