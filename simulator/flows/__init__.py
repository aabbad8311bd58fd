"""The demo's workflows, one module each: the telemetry every step of a transaction sends."""

from __future__ import annotations

from simulator.flows.flow import Flow
from simulator.flows.inventory_replenishment import InventoryReplenishment
from simulator.flows.invoice_sync import InvoiceSync
from simulator.flows.procure_to_pay import ProcureToPay
from simulator.flows.supplier_onboarding import SupplierOnboarding
from simulator.flows.workforce_sync import WorkforceSync

FLOWS: tuple[type[Flow], ...] = (ProcureToPay, InvoiceSync, SupplierOnboarding, InventoryReplenishment, WorkforceSync)

__all__ = ["FLOWS", "Flow"]
