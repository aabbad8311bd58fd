"""The procure-to-pay workflow and the facilities that tests and benchmarks configure, written once.

Each caller picks the steps after the requisition (and how `po_sent` is recognised); every call
returns a fresh copy, so a caller may change what it gets.
"""

from __future__ import annotations

import copy
from typing import Any

ST_MARYS_ICU: dict[str, Any] = {"id": "STM-ICU", "name": "St. Mary's ICU", "criticality": "critical"}
EASTSIDE_CLINIC: dict[str, Any] = {"id": "CLN-04", "name": "Eastside Clinic", "criticality": "normal"}
FACILITIES: list[dict[str, Any]] = [ST_MARYS_ICU, EASTSIDE_CLINIC]

# The PO number as spans carry it, as approval-saas carries it, and as log lines write it.
PO_KEYS = ["erp.po_number", "po.number"]
PO_KEY_PATTERNS = [r"\bPO[- ]?(\d{10})\b"]
# The PO leaves the ERP: a producer span publishing to erp.po.out.
SENT_TO_ERP_OUT: dict[str, Any] = {"attributes": {"messaging.destination.name": "erp.po.out"}, "kind": "producer"}
APPROVAL_SLA = {"normal": "8h", "critical": "1h"}


def budget_approval(sla: dict[str, str] | None = None) -> dict[str, Any]:
    """The human approval in approval-saas (its `approve` span), due after `sla` (8 h, 1 h if critical)."""
    return {
        "name": "budget_approval",
        "match": {"service": "approval-saas", "span_name": "approve"},
        "human": True,
        "sla": sla if sla is not None else APPROVAL_SLA,
    }


def po_sent(match: dict[str, Any], sla: str | None = None) -> dict[str, Any]:
    """The terminal step; `sla` is its normal-criticality due time, if it has one."""
    step: dict[str, Any] = {"name": "po_sent", "match": match}
    if sla is not None:
        step["sla"] = {"normal": sla}
    return step


def procure_to_pay(
    *steps: dict[str, Any], keys: list[str] | None = None, key_patterns: list[str] | None = None
) -> dict[str, Any]:
    """The workflow: the requisition (`POST /requisitions`), then `steps`, ending at po_sent; keyed by
    `keys` (erp.po_number alone unless given) and, where given, `key_patterns` found in log lines."""
    workflow: dict[str, Any] = {"name": "procure_to_pay", "keys": keys if keys is not None else ["erp.po_number"]}
    if key_patterns is not None:
        workflow["key_patterns"] = key_patterns
    workflow |= {
        "facility": "facility.id",
        "value": "erp.amount",
        "steps": [{"name": "requisition", "match": {"span_name": "POST /requisitions"}}, *steps],
        "terminal": ["po_sent"],
    }
    return copy.deepcopy(workflow)
