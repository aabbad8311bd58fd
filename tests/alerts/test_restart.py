"""Restart safety: alert state lives in the store, so a restarted evaluator neither pages again for
an alert that already fired nor restarts the `for:` clock of a pending one."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import httpx

from tests.alerts.conftest import PO_WORKFLOW, Alertmanager, AlertServer, Estate, Receiver, paging, unique, wait_for
from tests.conftest import free_port, server_settings


def test_restart_does_not_page_again_and_keeps_pending_clocks(
    chdb_path: Path, alertmanager: Alertmanager, receiver: Receiver
) -> None:
    now_rule, later_rule = unique("po_blocked_now"), unique("po_blocked_later")
    hook = f"/hook/{now_rule}"
    rules = [
        {"name": now_rule, "when": {"state": ["blocked"]}, "severity": "page"},
        {"name": later_rule, "when": {"state": ["blocked"]}, "for": "4s"},
    ]
    alerts = paging(alertmanager, receiver, hook, rules)
    settings = server_settings(chdb_path, **PO_WORKFLOW, alerts=alerts)
    first = AlertServer(settings).start()
    estate = Estate(first)
    second: AlertServer | None = None
    try:
        estate.block_po("4500000401")
        first.correlate()
        wait_for(lambda: receiver.received(hook), what="the first page")  # the webhook gets every rule's alerts
        [am_before] = wait_for(lambda: alertmanager.alerts(now_rule), what="the alert in Alertmanager")
        wait_for(lambda: alertmanager.notifications(now_rule, "firing"), what="Alertmanager's page")
        pending = {a["rule"]: a for a in first.alerts()}[later_rule]
        assert pending["state"] == "pending"
        first.stop()
        estate.close()
        stopped_at = time.time()

        second = AlertServer(
            settings.model_copy(
                update={"port": free_port(), "otlp_http_port": free_port(), "otlp_grpc_port": free_port()}
            )
        ).start()
        fired = wait_for(
            lambda: [a for a in second.alerts() if a["rule"] == later_rule and a["state"] == "firing"],
            what="the pending alert to fire after the restart",
        )[0]
        assert fired["active_since"] == pending["active_since"], "the for: clock survived the restart"
        assert datetime.fromisoformat(fired["fired_at"]).timestamp() > stopped_at, "it fired after the restart"
        time.sleep(2.0)  # several cycles and Alertmanager resends of the restarted evaluator

        pages = [r.json["alert"]["rule"] for r in receiver.received(hook) if r.json["status"] == "firing"]
        assert sorted(pages) == sorted([now_rule, later_rule]), "one page each, none again after the restart"
        assert len(alertmanager.notifications(now_rule, "firing")) == 1
        [am_after] = alertmanager.alerts(now_rule)
        assert am_after["startsAt"] == am_before["startsAt"] and am_after["status"]["state"] == "active"
        assert am_after["updatedAt"] > am_before["updatedAt"], "the restarted evaluator keeps it alive"
        firing = {a["rule"]: a for a in second.alerts()}[now_rule]
        events = httpx.get(f"{second.api}/api/v1/alerts/{firing['fingerprint']}").json()["events"]
        assert [e["kind"] for e in events if e["kind"] in ("pending", "firing")].count("firing") == 1
        assert [e["kind"] for e in events].count("delivered") == 1
        assert time.time() - stopped_at < 30
    finally:
        estate.close()
        first.stop()
        if second is not None:
            second.stop()
        (second or first).drop()
