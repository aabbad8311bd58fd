"""A blocked critical PO reaches a real Alertmanager with its business labels, and resolves after the fix."""

from __future__ import annotations

from pathlib import Path

from tests.alerts.conftest import PO_WORKFLOW, Alertmanager, AlertServer, Estate, unique, wait_for
from tests.conftest import server_settings


def test_blocked_critical_po_pages_through_alertmanager_and_resolves(
    chdb_path: Path, alertmanager: Alertmanager
) -> None:
    rule = unique("critical_work_blocked")
    alerts = {
        "alertmanager_url": alertmanager.url,
        "interval": "300ms",
        "resend_interval": "1s",
        "external_url": "https://triage.stmarys.example",
        "rules": [
            {
                "name": rule,
                "when": {"state": ["blocked", "failed"], "criticality": ["critical"]},
                "group_by": ["workflow", "facility", "cause_kind", "cause_component"],
                "severity": "page",
                "summary": "{count} {workflow} blocked at {facility_name}: {cause_kind} on {cause_component}",
            }
        ],
    }
    server = AlertServer(server_settings(chdb_path, **PO_WORKFLOW, alerts=alerts)).start()
    estate = Estate(server)
    try:
        estate.block_po("4500000104")
        estate.block_po("4500000105", facility="CLN-04", amount=950.0)  # normal facility: not this rule's business
        server.correlate()

        [alert] = wait_for(lambda: alertmanager.alerts(rule), what="the alert in Alertmanager")
        assert alert["labels"] == {
            "alertname": rule,
            "severity": "page",
            "workflow": "procure_to_pay",
            "facility": "STM-ICU",
            "criticality": "critical",
            "cause_kind": "dependency_error",
            "cause_component": "approval-saas",
        }
        notes = alert["annotations"]
        assert notes["summary"] == "1 procure_to_pay blocked at St. Mary's ICU: dependency_error on approval-saas"
        assert notes["count"] == "1" and notes["value_at_risk"] == "182000.00"
        link = "https://triage.stmarys.example/dashboards/transaction/procure_to_pay/4500000104"
        assert notes["dashboard_url"] == link and alert["generatorURL"] == link
        assert "approval-saas returned 503" in notes["description"] and "$182,000" in notes["description"]
        assert alert["status"]["state"] == "active"
        # Alertmanager notified its own receiver once, with the business labels.
        [paged] = wait_for(lambda: alertmanager.notifications(rule, "firing"), what="Alertmanager's notification")
        assert paged["labels"]["facility"] == "STM-ICU"
        # Triage's API says the same.
        [mine] = server.alerts()
        assert (mine["rule"], mine["state"], mine["silenced"], mine["value"]) == (rule, "firing", False, 182000.0)
        assert mine["transactions"] == ["procure_to_pay/4500000104"]

        estate.fix_po("4500000104")
        server.correlate()
        wait_for(lambda: not alertmanager.alerts(rule), what="the alert to resolve in Alertmanager")
        [resolved] = wait_for(lambda: alertmanager.notifications(rule, "resolved"), what="the resolved notification")
        assert resolved["labels"]["alertname"] == rule
        assert len(alertmanager.notifications(rule, "firing")) == 1, "one page, not one per resend"
        assert server.alerts() == []
        [history] = server.alerts("resolved")
        assert history["resolved_at"] > history["fired_at"]
    finally:
        estate.close()
        server.stop()
        server.drop()
