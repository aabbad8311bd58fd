"""/readyz tells the truth about the background work: a correlator that fails cycle after cycle makes
the service not ready, naming the task and its error; when it works again, the service is ready."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import LiveServer, server_settings
from tests.workflows import SENT_TO_ERP_OUT, po_sent, procure_to_pay


def _readiness(server: LiveServer, want: int, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while True:
        response = httpx.get(f"{server.api}/readyz", timeout=5)
        if response.status_code == want or time.time() > deadline:
            assert response.status_code == want, response.text
            return dict(response.json())
        time.sleep(0.2)


def test_a_correlator_failing_every_cycle_makes_the_service_not_ready(chdb_path: Path) -> None:
    workflow = procure_to_pay(po_sent(SENT_TO_ERP_OUT))
    settings = server_settings(chdb_path, workflows=[workflow], correlation={"interval": "200ms"})
    server = LiveServer(settings).start()
    try:
        assert _readiness(server, 200)["failing"] == []
        # The correlator's scratch table gone: every cycle fails, as on a store whose schema was damaged.
        server.store.command("RENAME TABLE correlator_affected TO correlator_affected_moved")
        body = _readiness(server, 503)
        assert body["status"] == "not_ready" and body["store_reachable"] is True
        [problem] = body["failing"]
        assert problem.startswith("correlator: ") and "cycles failed in a row" in problem
        assert "correlator_affected" in problem, "the last error says what is wrong"
        server.store.command("RENAME TABLE correlator_affected_moved TO correlator_affected")
        assert _readiness(server, 200)["failing"] == []
    finally:
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def test_queue_pollers_whose_samples_cannot_be_stored_make_the_service_not_ready(chdb_path: Path) -> None:
    """A broker that is down is a queue's status; the store refusing every sample is a failure of Triage."""
    queue = {"name": "invoices", "kind": "redis", "url": "redis://127.0.0.1:6379/0", "stream": "triage-ready-probe"}
    queue |= {"group": "erp-sync", "interval": "1s"}
    server = LiveServer(server_settings(chdb_path, queues=[queue])).start()
    try:
        assert _readiness(server, 200)["failing"] == []
        server.store.command("RENAME TABLE queue_lag TO queue_lag_moved")
        body = _readiness(server, 503)
        assert [p for p in body["failing"] if p.startswith("queue pollers: ")], body
        server.store.command("RENAME TABLE queue_lag_moved TO queue_lag")
        assert _readiness(server, 200)["failing"] == []
    finally:
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")
