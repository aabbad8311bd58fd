"""Prometheus users: `triage rules export --format prometheus` writes rules that promtool accepts and
that behave in `promtool test rules`; a real Prometheus scrapes /metrics, evaluates them and its
alert reaches the same Alertmanager."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.alerts.conftest import (
    PO_WORKFLOW,
    PROMETHEUS,
    PROMTOOL,
    Alertmanager,
    AlertServer,
    Estate,
    Program,
    need,
    unique,
    wait_for,
)
from tests.conftest import free_port, server_settings

DESIGN_RULE = {
    "when": {"state": ["blocked", "failed"], "criticality": ["critical"]},
    "group_by": ["workflow", "facility", "cause_kind", "cause_component"],
    "severity": "page",
    "summary": "{count} {workflow} blocked at {facility_name}: {cause_kind} on {cause_component}",
}


def export(tmp: Path, rules: list[dict[str, Any]], **alerts: Any) -> tuple[Path, str]:
    """Run the real CLI on a config file; return the rule file and what it said on stderr."""
    config = tmp / "triage.yaml"
    config.write_text(yaml.safe_dump({**PO_WORKFLOW, "alerts": {"rules": rules, **alerts}}))
    out = tmp / "rules.yml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "rules",
            "export",
            "--format",
            "prometheus",
            "--config",
            str(config),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stderr


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    need(PROMTOOL)
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_exported_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    rules = [
        {"name": "critical_work_blocked", "for": "5m", **DESIGN_RULE},
        {
            "name": "p2p_value_at_risk",
            "when": {"workflow": "procure_to_pay", "value_at_risk_over": "500k"},
            "group_by": ["workflow"],
            "for": "15m",
        },
        {"name": "queue_stalled", "when": {"queue_status": ["stalled", "stopped"]}, "for": "10m"},
        {"name": "approval_errors", "when": {"error_rate_over": "20%", "service": "approval-saas"}},
        {
            "name": "invoices_before_close",
            "when": {"workflow": "invoice_sync", "state": ["in_progress", "stalled"], "period_close_within": "2d"},
        },
    ]
    out, stderr = export(tmp_path, rules, external_url="https://triage.example")
    assert "not exported: invoices_before_close: uses period_close_within, state in_progress" in " ".join(
        stderr.split()
    )
    checked = promtool("check", "rules", str(out))
    assert checked.returncode == 0 and "SUCCESS: 4 rules found" in checked.stdout, checked.stdout + checked.stderr

    icu = (
        'workflow="procure_to_pay",state="blocked",facility="STM-ICU",facility_name="St. Mary\'s ICU",'
        'criticality="critical",cause_kind="dependency_error",cause_component="approval-saas"'
    )
    clinic = (
        'workflow="procure_to_pay",state="failed",facility="CLN-04",facility_name="Eastside Clinic",'
        'criticality="normal",cause_kind="transformation_failed",cause_component="supplier-orders"'
    )
    tests = {
        "rule_files": [out.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"triage_stuck_transactions{{{icu}}}", "values": "1x40"},
                    {"series": f"triage_stuck_transactions{{{clinic}}}", "values": "3x40"},
                    {"series": f"triage_stuck_transactions_value{{{icu}}}", "values": "182000x40"},
                    {"series": f"triage_stuck_transactions_value{{{clinic}}}", "values": "200000x10 400000x30"},
                    {"series": 'triage_queue_status{queue="approvals",status="stalled"}', "values": "1x40"},
                    {"series": 'triage_dependency_error_ratio{service="approval-saas"}', "values": "0.5x40"},
                    {"series": 'triage_dependency_calls{service="approval-saas"}', "values": "40x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "critical_work_blocked", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "critical_work_blocked",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "page",
                                    "criticality": "critical",
                                    "workflow": "procure_to_pay",
                                    "facility": "STM-ICU",
                                    "facility_name": "St. Mary's ICU",
                                    "cause_kind": "dependency_error",
                                    "cause_component": "approval-saas",
                                },
                                "exp_annotations": {
                                    "summary": "1 procure_to_pay blocked at St. Mary's ICU: dependency_error on approval-saas",
                                    "count": "1",
                                    "dashboard_url": "https://triage.example/dashboards/?workflow=procure_to_pay"
                                    "&facility=STM-ICU&cause=dependency_error",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "27m",
                        "alertname": "p2p_value_at_risk",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "workflow": "procure_to_pay"},
                                "exp_annotations": {
                                    "summary": "$582k at risk in procure_to_pay transactions stuck",
                                    "value_at_risk": "582000",
                                    "dashboard_url": "https://triage.example/dashboards/?workflow=procure_to_pay",
                                },
                            }
                        ],
                    },
                    {"eval_time": "25m", "alertname": "p2p_value_at_risk", "exp_alerts": []},
                    {
                        "eval_time": "11m",
                        "alertname": "queue_stalled",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "queue": "approvals",
                                    "cause_kind": "queue_backlog",
                                    "cause_component": "approvals",
                                },
                                "exp_annotations": {
                                    "summary": "queue approvals is stuck",
                                    "dashboard_url": "https://triage.example/dashboards/",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "1m",
                        "alertname": "approval_errors",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "service": "approval-saas",
                                    "cause_kind": "dependency_error",
                                    "cause_component": "approval-saas",
                                },
                                "exp_annotations": {
                                    "summary": "approval-saas fails 50% of calls",
                                    "dashboard_url": "https://triage.example/dashboards/",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    tested = promtool("test", "rules", str(test_file))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_prometheus_evaluates_exported_rules_and_alerts_alertmanager(
    chdb_path: Path, tmp_path: Path, alertmanager: Alertmanager
) -> None:
    need(PROMETHEUS)
    rule = unique("critical_work_blocked_prom")
    rules = [{"name": rule, **DESIGN_RULE}]
    alerts = {"interval": "300ms", "rules": rules, "enabled": True}
    server = AlertServer(server_settings(chdb_path, **PO_WORKFLOW, alerts=alerts)).start()
    out, _ = export(tmp_path, rules, external_url=server.api)
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": "1s",
                    "evaluation_interval": "1s",
                    "external_labels": {"via": "prometheus"},
                },
                "rule_files": [str(out)],
                "scrape_configs": [
                    {"job_name": "triage", "static_configs": [{"targets": [f"127.0.0.1:{server.settings.port}"]}]}
                ],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            }
        )
    )
    prometheus = Program(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port,
        tmp_path / "prometheus.log",
    )
    estate = Estate(server)
    try:
        estate.block_po("4500000501")
        server.correlate()
        gauge = 'triage_stuck_transactions{cause_component="approval-saas",cause_kind="dependency_error"'
        wait_for(lambda: gauge in httpx.get(f"{server.api}/metrics").text, what="the business gauge on /metrics")
        [alert] = wait_for(lambda: alertmanager.alerts(rule), timeout=30, what="Prometheus' alert in Alertmanager")
        assert alert["labels"] == {
            "alertname": rule,
            "via": "prometheus",
            "severity": "page",
            "workflow": "procure_to_pay",
            "facility": "STM-ICU",
            "facility_name": "St. Mary's ICU",
            "criticality": "critical",
            "cause_kind": "dependency_error",
            "cause_component": "approval-saas",
        }
        assert alert["annotations"]["summary"] == (
            "1 procure_to_pay blocked at St. Mary's ICU: dependency_error on approval-saas"
        )
        assert f":{port}/graph?" in alert["generatorURL"], "it came from the Prometheus we started"
        wait_for(lambda: alertmanager.notifications(rule, "firing"), what="Alertmanager's page")

        estate.fix_po("4500000501")
        server.correlate()
        wait_for(lambda: not alertmanager.alerts(rule), timeout=30, what="Prometheus to resolve the alert")
    finally:
        estate.close()
        prometheus.stop()
        server.stop()
        server.drop()
