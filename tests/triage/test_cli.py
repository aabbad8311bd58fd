"""The `triage` command as a user runs it: a real subprocess, real ports, a real data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import TRIAGE, free_port, serve_command, serve_ports, start_server

GOOD_CONFIG = """
store: chdb:///tmp/never-opened
facilities:
  - {id: STM-ICU, name: "St. Mary's ICU", criticality: critical}
workflows:
  - name: procure_to_pay
    keys: [erp.po_number, po.number]
    key_patterns: ['\\bPO[- ]?(\\d{10})\\b']
    facility: facility.id
    value: erp.amount
    steps:
      - {name: requisition, match: {span_name: "POST /requisitions"}}
      - {name: budget_approval, match: {service: approval-saas}, human: true, sla: {normal: 8h, critical: 1h}}
      - {name: po_sent, match: {attributes: {messaging.destination.name: erp.po.out}, kind: producer}}
    terminal: [po_sent]
queues:
  - {name: approvals, kind: rabbitmq, url: "amqp://guest:guest@127.0.0.1:5672/", queue: wf.approvals, interval: 15s}
log_sources:
  - {name: mirth, format: mirth}
alerts:
  alertmanager_url: null
  rules:
    - name: critical_work_blocked
      when: {state: [blocked, failed], criticality: [critical]}
      for: 5m
      severity: page
"""


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRIAGE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_check_config_accepts_the_design_example(tmp_path: Path) -> None:
    config = tmp_path / "triage.yaml"
    config.write_text(GOOD_CONFIG)
    result = run("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout
    assert "procure_to_pay" in result.stdout and "approvals" in result.stdout


def test_check_config_names_file_field_and_fix(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        GOOD_CONFIG.replace("critical: 1h", "critical: 1 hour").replace("kind: rabbitmq", "kind: kafka")
        + "\nport: http\n"
    )
    result = run("check-config", str(config))
    assert result.returncode == 2
    err = " ".join(result.stderr.split())
    assert str(config) in err
    assert "workflows[0] (procure_to_pay).steps[1] (budget_approval).sla.critical: invalid duration '1 hour'" in err
    assert "write e.g. '30s', '15m', '8h' or '2d'" in err
    assert "queues[0] (approvals).kind" in err
    assert "port:" in err


def test_check_config_reports_yaml_syntax_with_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("store: chdb:///x\nworkflows: [\n  - name: a\n")
    result = run("check-config", str(config))
    assert result.returncode == 2
    assert "is not valid YAML" in result.stderr and "line" in result.stderr


def test_migrate_applies_once(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'data'}"
    first = run("migrate", "--store", dsn)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_raw_otel_tables" in first.stderr
    second = run("migrate", "--store", dsn)
    assert "is up to date" in second.stderr


def test_bad_store_dsn_is_a_clear_error(tmp_path: Path) -> None:
    result = run("migrate", "--store", "postgres://localhost/x")
    assert result.returncode == 2
    assert "use chdb:///path (embedded) or http(s)://user:pass@host:8123/db" in " ".join(result.stderr.split())


def _request(service: str, trace_id: bytes) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, b"\x01" * 8, "POST /requisitions"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 5_000_000
    return req.SerializeToString()


def test_serve_flushes_on_sigterm_and_data_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = serve_ports()
    # A long batch delay: the spans can only reach the store through the shutdown flush.
    env = {"TRIAGE_INGEST__BATCH_MAX_DELAY": "60s"}
    log = tmp_path / "serve.log"
    proc = start_server(serve_command(data, ports), ports, log, {**os.environ, **env}, timeout=60)
    trace_id = os.urandom(16)
    response = httpx.post(
        f"http://127.0.0.1:{ports['http']}/v1/traces",
        content=_request("cli", trace_id),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "event=shutdown_complete" in output

    proc = start_server(serve_command(data, ports), ports, log, dict(os.environ), timeout=60)
    try:
        trace = httpx.get(f"http://127.0.0.1:{ports['api']}/api/v1/traces/{trace_id.hex()}").json()
        assert [s["name"] for s in trace["spans"]] == ["POST /requisitions"]
        assert trace["spans"][0]["service_name"] == "cli"
        assert trace["spans"][0]["timestamp"].endswith("Z")
        ready = httpx.get(f"http://127.0.0.1:{ports['api']}/readyz").json()
        assert ready["pending_migrations"] == [] and ready["store_reachable"] is True
        docs = httpx.get(f"http://127.0.0.1:{ports['api']}/openapi.json").json()
        assert "/api/v1/traces/{trace_id}" in docs["paths"]
        # The server holds the embedded store, so `triage replay` asks it over the API.
        replay = run("replay", "--from", "-1h", "--api", f"http://127.0.0.1:{ports['api']}")
        assert replay.returncode == 0, replay.stderr
        assert "replayed:" in replay.stderr and "traces" in replay.stderr
        bad = run("replay", "--from", "yesterday")
        assert bad.returncode == 2 and "is not a time" in bad.stderr
        # No --api and the server on other ports than the configured ones: the address it left beside
        # the data says where it is, instead of the embedded engine failing on a store another process holds.
        address = data / "triage-server.json"
        assert f"http://127.0.0.1:{ports['api']}" in address.read_text()
        found = run("replay", "--from", "-1h", "--store", f"chdb://{data}", env={"TRIAGE_PORT": str(free_port())})
        assert found.returncode == 0, found.stderr
        assert "replayed:" in found.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert not (data / "triage-server.json").exists(), "a stopped server takes its address away"
