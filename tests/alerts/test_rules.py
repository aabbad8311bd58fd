"""Rules as users write them: YAML in the config, a rules file, shipped packs and the API; errors
name the source, the rule and the field, and say how to fix it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from alerts import export_prometheus, pack_names
from alerts.rules import load_pack
from app.config import load_config
from tests.alerts.conftest import PO_WORKFLOW, AlertServer, Estate, unique, wait_for
from tests.conftest import server_settings
from triage.errors import ConfigError
from triage.settings import load_settings

TRIAGE = [sys.executable, "-m", "app.cli"]


def rules_error(rules: list[dict]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"alerts": {"rules": rules}}, environ={})
    return " ".join(str(caught.value).split())


def test_rule_errors_name_the_rule_the_field_and_the_fix() -> None:
    assert "alerts.rules[0] (po_blocked).when: unknown condition 'criticalty' (did you mean 'criticality'?)" in (
        rules_error([{"name": "po_blocked", "when": {"criticalty": ["critical"]}}])
    )
    assert "alerts.rules[0] (mixed).when: `when` mixes transaction conditions (state) with queue conditions" in (
        rules_error([{"name": "mixed", "when": {"state": "blocked", "queue_status": "stalled"}}])
    )
    assert "alerts.rules[0] (q): summary uses {facility_name}, which queue rules do not have; available:" in (
        rules_error([{"name": "q", "when": {"queue_status": "stalled"}, "summary": "at {facility_name}"}])
    )
    assert "alerts.rules[0] (v).when.value_at_risk_over: invalid amount 'lots': write e.g. 500000, '500k'" in (
        rules_error([{"name": "v", "when": {"value_at_risk_over": "lots"}}])
    )
    assert "alerts.rules[0] (r).when.error_rate_over: invalid ratio 2" in (
        rules_error([{"name": "r", "when": {"error_rate_over": 2}}])
    )
    assert "alerts.rules[0] (f).for: invalid duration '5 minutes'" in (
        rules_error([{"name": "f", "when": {"state": "blocked"}, "for": "5 minutes"}])
    )
    assert "alerts.rules[0] (g): group_by ['queue'] is not available to transaction rules" in (
        rules_error([{"name": "g", "when": {"state": "blocked"}, "group_by": ["queue"]}])
    )
    assert "alerts.rules[0] (t): summary template: Single '}' encountered" in (
        rules_error([{"name": "t", "when": {"state": "blocked"}, "summary": "oops }"}])
    )
    assert "each alert rule name must be unique; repeated: twice" in (
        rules_error([{"name": "twice", "when": {}}, {"name": "twice", "when": {}}])
    )


def test_packs_load_and_export(tmp_path: Path) -> None:
    assert pack_names() == ["inventory", "invoice_sync", "procure_to_pay", "supplier_onboarding", "workforce"]
    settings = load_settings(None, {"alerts": {"packs": pack_names()}}, environ={})
    rules = [r for name in pack_names() for r in load_pack(name)]
    assert len({r.name for r in rules}) == len(rules) >= 10
    text, skipped = export_prometheus(rules, settings)
    assert len(skipped) == 2 and text.count("- alert: ") == len(rules) - 2


def test_rules_file_errors_from_the_cli(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: po_blocked\n"
        "    when: {state: [blocked], criticality: [critical]}\n"
        "  - name: invoices_late\n"
        "    when: {workflow: invoice_sync, overdue: 2 days}\n"
    )
    config = tmp_path / "triage.yaml"
    config.write_text(f"alerts:\n  rules_file: {rules}\n  packs: [procure_to_pay]\n")
    env = {**os.environ, "COLUMNS": "200"}
    bad = subprocess.run(
        [*TRIAGE, "rules", "check", "--config", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert bad.returncode == 2
    err = " ".join(bad.stderr.split())
    assert f"invalid configuration in {rules}" in err
    assert (
        "rules[1] (invoices_late).when.overdue: invalid duration '2 days': write e.g. '30s', '15m', '8h' or '2d'" in err
    )

    rules.write_text(rules.read_text().replace("2 days", "2d"))
    good = subprocess.run(
        [*TRIAGE, "rules", "check", "--config", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert good.returncode == 0, good.stderr
    assert "6 alert rules are valid" in good.stdout and "pack:procure_to_pay" in good.stdout

    config.write_text(f"alerts:\n  rules_file: {rules}\n  packs: [procure_to_pay, payroll]\n")
    unknown = subprocess.run(
        [*TRIAGE, "rules", "check", "--config", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert unknown.returncode == 2 and "unknown pack 'payroll'; shipped packs: inventory, invoice_sync" in (
        " ".join(unknown.stderr.split())
    )


def test_rules_through_the_api(chdb_path: Path) -> None:
    config_rule = {"name": "from_config", "when": {"state": "failed"}}
    alerts = {"interval": "300ms", "rules": [config_rule]}
    server = AlertServer(server_settings(chdb_path, **PO_WORKFLOW, alerts=alerts)).start()
    estate = Estate(server)
    url = f"{server.api}/api/v1/alerts/rules"
    name = unique("api_po_blocked")
    try:
        bad = httpx.post(url, json={"name": name, "when": {"state": ["blocked"], "criticality": ["vital"]}})
        assert bad.status_code == 422
        assert (
            f"rules[0] ({name}).when.criticality[0]: Input should be 'critical', 'high' or 'normal'"
            in (bad.json()["detail"])
        )
        taken = httpx.post(url, json={"name": "from_config", "when": {"state": "blocked"}})
        assert taken.status_code == 409 and "defined in config" in taken.text
        rule = {
            "name": name,
            "when": {"state": ["blocked"]},
            "group_by": ["workflow"],
            "severity": "page",
            "summary": "{count} {workflow} blocked ({value})",
        }
        created = httpx.post(url, json=rule)
        assert created.status_code == 201, created.text
        listed = {r["name"]: r for r in httpx.get(url).json()}
        assert listed[name]["source"] == "api" and listed["from_config"]["source"] == "config"
        assert listed[name]["rule"]["when"] == {"state": ["blocked"]}

        estate.block_po("4500000701")
        server.correlate()
        [alert] = wait_for(
            lambda: [a for a in server.alerts() if a["rule"] == name and a["state"] == "firing"],
            what="the API rule's alert",
        )
        assert alert["summary"] == "1 procure_to_pay blocked ($182,000)"
        exported = httpx.get(f"{url}/prometheus").text
        assert f"alert: {name}" in exported and "alert: from_config" in exported

        assert httpx.delete(f"{url}/from_config").status_code == 409
        assert httpx.delete(f"{url}/{name}").status_code == 204
        assert httpx.delete(f"{url}/{name}").status_code == 404
        wait_for(lambda: not [a for a in server.alerts() if a["rule"] == name], what="its alert to resolve")
        assert [a["rule"] for a in server.alerts("resolved")] == [name]
    finally:
        estate.close()
        server.stop()
        server.drop()
