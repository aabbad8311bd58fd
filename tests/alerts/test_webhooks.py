"""Webhooks: HMAC-signed JSON, retried with backoff until the receiver recovers, delivered exactly
once; a receiver that never recovers gets a dead letter, visible in /metrics and the API."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import httpx
import pytest

from tests.alerts.conftest import PO_WORKFLOW, AlertServer, Estate, Receiver, unique, wait_for
from tests.conftest import server_settings

SECRET = "s3cret-for-tests"


def metric(server: AlertServer, name: str, **labels: str) -> float:
    """A sample's value from the server's /metrics (0 when absent)."""
    text = httpx.get(f"{server.api}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_webhook_retries_until_the_receiver_recovers_and_delivers_once(
    chdb_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_TEST_WEBHOOK_SECRET", SECRET)
    rule = unique("po_blocked_hook")
    flaky, broken = f"/flaky/{rule}", f"/broken/{rule}"
    receiver.fail_first[flaky] = 2
    receiver.always_fail.add(broken)
    alerts = {
        "webhooks": [
            {"url": receiver.url(flaky), "secret_env": "TRIAGE_TEST_WEBHOOK_SECRET"},
            {"url": receiver.url(broken), "send_resolved": False},
        ],
        "interval": "300ms",
        "webhook_backoff": "200ms",
        "webhook_max_attempts": 3,
        "rules": [{"name": rule, "when": {"state": ["blocked"], "criticality": "critical"}, "severity": "page"}],
    }
    server = AlertServer(server_settings(chdb_path, **PO_WORKFLOW, alerts=alerts)).start()
    estate = Estate(server)
    try:
        estate.block_po("4500000301")
        server.correlate()
        [ok] = wait_for(lambda: receiver.received(flaky), what="the delivery after two failures")
        attempts = receiver.received(flaky, answered=None)
        assert [r.answered for r in attempts] == [503, 503, 200]
        assert len({r.headers["X-Triage-Delivery"] for r in attempts}) == 1, "every retry is the same delivery"
        assert attempts[1].at - attempts[0].at >= 0.15 and attempts[2].at - attempts[1].at >= 0.3, "backoff grows"
        expected = "sha256=" + hmac.new(SECRET.encode(), ok.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(ok.headers["X-Triage-Signature-256"], expected)
        message = ok.json
        assert (message["status"], message["alert"]["rule"], message["alert"]["severity"]) == ("firing", rule, "page")
        assert message["alert"]["labels"]["facility"] == "STM-ICU"
        assert message["alert"]["value_at_risk"] == 182000.0
        assert message["alert"]["transactions"] == ["procure_to_pay/4500000301"]
        assert message["alert"]["dashboard_url"].endswith("/dashboards/transaction/procure_to_pay/4500000301")

        # The receiver that never recovers: three attempts, then a dead letter, counted and listed.
        def dead() -> list[dict]:
            return httpx.get(f"{server.api}/api/v1/alerts/deliveries").json()["dead_letters"]

        [letter] = wait_for(dead, what="the dead letter")
        assert (letter["target"], letter["attempts"], letter["rule"]) == (receiver.url(broken), 3, rule)
        assert "HTTP 503" in letter["last_error"]
        assert metric(server, "triage_alerts_dead_letters_total", target=receiver.url(broken)) == 1
        assert metric(server, "triage_alerts_delivery_failures_total", target=receiver.url(flaky)) == 2
        targets = {t["target"]: t for t in httpx.get(f"{server.api}/api/v1/alerts/deliveries").json()["targets"]}
        assert targets[receiver.url(flaky)]["sent"] == 1 and targets[receiver.url(flaky)]["failed_attempts"] == 2
        assert targets[receiver.url(broken)]["dead_letters"] == 1

        time.sleep(1.5)  # several more evaluation cycles: nothing is sent again
        assert len(receiver.received(flaky)) == 1 and len(receiver.received(broken, answered=None)) == 3

        # Fixed: one signed "resolved" message to the hook that took the page.
        estate.fix_po("4500000301")
        server.correlate()
        wait_for(lambda: len(receiver.received(flaky)) == 2, what="the resolved message")
        resolved = receiver.received(flaky)[1]
        assert resolved.json["status"] == "resolved" and resolved.json["alert"]["ends_at"]
        expected = "sha256=" + hmac.new(SECRET.encode(), resolved.body, hashlib.sha256).hexdigest()
        assert resolved.headers["X-Triage-Signature-256"] == expected
        time.sleep(1.0)
        assert len(receiver.received(flaky)) == 2 and len(receiver.received(broken, answered=None)) == 3
    finally:
        estate.close()
        server.stop()
        server.drop()
