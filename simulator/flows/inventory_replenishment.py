"""Inventory replenishment of critical supplies: a supply cabinet drops below par → replenishment
order in the ERP → picked in the warehouse → restocked at the unit.

The ERP's consumer of `inv.replenish` stops for a while (a queue backlog); a message delivered
twice creates the order twice; the warehouse scanners' telemetry sometimes arrives late.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from simulator.brokers import Delivery
from simulator.estate import Estate
from simulator.flows.flow import Flow, amount
from simulator.transactions import Transaction


class InventoryReplenishment(Flow):
    name = "inventory_replenishment"

    def describe(self, run: Estate, tx: Transaction) -> None:
        tx.value = amount(run, 900.0, 0.8)
        tx.data["item"] = run.rng.choice(self.scenario.supplies)
        tx.data["par"] = run.rng.choice([20, 40, 60, 100])

    def _order(self, tx: Transaction) -> dict[str, object]:
        return {"inv.replenishment_id": tx.key, "facility.id": tx.facility, "inv.value": tx.value}

    def begin(self, run: Estate, tx: Transaction) -> None:
        par = tx.data["par"]
        attrs = {
            **self._order(tx),
            "inv.item": tx.data["item"],
            "inv.par_level": par,
            "inv.on_hand": run.rng.randrange(0, par // 4),
            "inv.cabinet": f"{tx.facility}-CAB{run.rng.randrange(1, 9)}",
        }
        breach = run.span(tx, "supply-cabinets", "par level breach", SpanKind.INTERNAL, attrs, duration_ms=10)
        run.publish(tx, "replenishment", breach, "order_supplies", "supply-cabinets")

    def order_supplies(self, run: Estate, tx: Transaction, delivery: Delivery) -> None:
        """The ERP inventory module's consumer creates the replenishment order (twice, if delivered twice)."""
        consumer = run.consume(tx, delivery, "erp-inventory")
        run.span(
            tx,
            "erp-inventory",
            "create replenishment order",
            SpanKind.INTERNAL,
            self._order(tx),
            consumer,
            offset_ms=3,
            duration_ms=30,
        )
        if not delivery.redelivered:
            run.later(self.pace(run, tx, "picked"), lambda: self._pick(run, tx))

    def _pick(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._order(tx), "http.response.status_code": 201}
        run.span(tx, "erp-inventory", "POST /picks", SpanKind.SERVER, attrs, duration_ms=25, late=run.late())
        run.later(self.pace(run, tx, "restocked"), lambda: self._restock(run, tx))

    def _restock(self, run: Estate, tx: Transaction) -> None:
        attrs = {**self._order(tx), "inv.item": tx.data["item"], "http.response.status_code": 200}
        run.span(tx, "supply-cabinets", "restock confirmed", SpanKind.SERVER, attrs, duration_ms=15)
