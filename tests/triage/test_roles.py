"""`triage serve --roles`: a process runs the parts it is given and nothing else, on real ports."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, server_settings
from tests.triage.test_cli import run
from triage.settings import Shard, load_settings


def _post_span(server: LiveServer) -> httpx.Response:
    now = time.time_ns()
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "POST /requisitions", "kind": 2,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000)}  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "erp"}}]},
                               "scopeSpans": [{"spans": [span]}]}]}  # fmt: skip
    return httpx.post(f"{server.otlp_http}/v1/traces", json=body, timeout=10)


def test_a_collector_collects_and_serves_no_api_or_dashboards(chdb_path: Path) -> None:
    server = LiveServer(server_settings(chdb_path, roles="collector")).start()
    try:
        assert server.runtime is not None
        assert server.runtime.worker is None and server.runtime.evaluator is None
        assert httpx.get(f"{server.api}/healthz").status_code == 200
        assert httpx.get(f"{server.api}/metrics").status_code == 200
        assert httpx.get(f"{server.api}/api/v1/transactions").status_code == 404
        assert httpx.get(f"{server.api}/dashboards/").status_code == 404
        assert _post_span(server).status_code == 200
        server.flush()
        assert server.store.command("SELECT count() FROM otel_traces") == 1
        lines = httpx.post(f"{server.api}/api/v1/logs/raw", params={"source": "json"}, content=b'{"msg": "x"}\n')
        assert lines.status_code == 200, lines.text
    finally:
        server.stop()


def test_api_and_dashboards_open_no_otlp_port_and_run_no_correlator(chdb_path: Path) -> None:
    server = LiveServer(server_settings(chdb_path, roles=["api", "dashboards"])).start()
    try:
        assert server.runtime is not None and server.runtime.worker is None
        assert httpx.get(f"{server.api}/api/v1/transactions").json()["items"] == []
        assert httpx.get(f"{server.api}/dashboards/").status_code == 200
        with pytest.raises(httpx.ConnectError):
            _post_span(server)
    finally:
        server.stop()


def test_roles_and_shard_come_from_the_environment_too() -> None:
    settings = load_settings(None, None, environ={"TRIAGE_ROLES": "correlator,alerts", "TRIAGE_SHARD": "2/4"})
    assert settings.roles == ["correlator", "alerts"] and settings.shard == Shard(index=2, count=4)


def test_an_unknown_role_is_refused_with_the_roles_there_are() -> None:
    result = run("serve", "--roles", "collector,correlater", "--store", "chdb:///tmp/never-opened")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "correlater" in message and "'collector', 'correlator', 'api', 'dashboards' or 'alerts'" in message


def test_all_in_one_holds_its_shard_and_the_alerts_lease_and_says_so(chdb_path: Path) -> None:
    from tests.correlator.test_sharding import WORKFLOW

    settings = server_settings(chdb_path, workflows=[WORKFLOW], correlation={"interval": 0.3}, alerts={"interval": 1})
    server = LiveServer(settings).start()
    try:
        deadline = time.monotonic() + 20
        body: dict = {}
        while time.monotonic() < deadline:
            body = httpx.get(f"{server.api}/api/v1/leases").json()
            names = {lease["name"]: lease for lease in body["leases"]}
            if body["held_here"] and "alerts" in names:
                break
            time.sleep(0.2)
        assert body["roles"] == ["collector", "correlator", "api", "dashboards", "alerts"]
        assert body["shard"] == "1/1" and body["held_here"] == ["1/1"]
        names = {lease["name"]: lease for lease in body["leases"]}
        assert ":correlator-1of1:" in names["correlator/1/1"]["holder"] and not names["correlator/1/1"]["free"]
        assert ":alerts:" in names["alerts"]["holder"] and not names["alerts"]["free"]
    finally:
        server.stop()
    from triage.leases import lease_states

    assert all(s.free for s in lease_states(server.store)), "a clean stop releases every lease"
