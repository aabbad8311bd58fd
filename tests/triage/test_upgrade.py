"""Upgrades lose nothing: a store written by the release before this one (its code, checked out from git)
starts under this version, migrates in place, and serves every span and transaction it held, with the
same states; what this version then ingests lands beside it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import serve_command, serve_ports, start_server

REPO = Path(__file__).resolve().parents[2]
# The release this one upgrades from: main as it landed before the layered redesign and the WAL.
PREVIOUS_RELEASE = "9f4a10e"
CONFIG = """
facilities:
  - {id: STM-ICU, name: "St. Mary's ICU", criticality: critical}
workflows:
  - name: procure_to_pay
    keys: [erp.po_number]
    facility: facility.id
    value: erp.amount
    steps:
      - {name: requisition, match: {span_name: "POST /requisitions"}}
      - {name: budget_approval, match: {service: approval-saas}, human: true, sla: {normal: 2s, critical: 2s}}
      - {name: po_sent, match: {span_name: "send PO"}}
    terminal: [po_sent]
correlation: {interval: 500ms, settle: 100ms, reevaluate: 1s}
"""


def _checkout(commit: str, into: Path) -> Path:
    """The release's source tree (git archive of `commit`)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, timeout=60)
    if archive.returncode != 0:
        pytest.fail(f"cannot check out the previous release {commit}: {archive.stderr.decode()[:300]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _spans(po: str, facility: str, names: list[tuple[str, str]]) -> bytes:
    req = ExportTraceServiceRequest()
    trace_id = os.urandom(16)
    for service, name in names:
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", service
        span = rs.scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = trace_id, os.urandom(8), name
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
        for key, value in (("erp.po_number", po), ("facility.id", facility)):
            attr = span.attributes.add()
            attr.key, attr.value.string_value = key, value
    return req.SerializeToString()


def _transactions(api: str, want: int) -> dict[str, dict]:
    deadline = time.time() + 60
    while True:
        items = httpx.get(f"{api}/api/v1/transactions", params={"limit": 100}, timeout=10).json()["items"]
        stuck = [i for i in items if i["state"] != "in_progress"]
        if len(stuck) >= want or time.time() > deadline:
            return {i["key"]: i for i in items}
        time.sleep(0.5)


def test_a_store_of_the_previous_release_serves_everything_after_the_upgrade(tmp_path: Path) -> None:
    old = _checkout(PREVIOUS_RELEASE, tmp_path / "previous")
    data, config = tmp_path / "data", tmp_path / "triage.yaml"
    config.write_text(CONFIG)
    ports = serve_ports()
    env = {**os.environ, "TRIAGE_REDACTION_KEY": "upgrade-test", "PYTHONPATH": str(old)}
    old_command = [
        sys.executable,
        "-m",
        "triage.cli",
        *serve_command(data, ports)[3:],  # serve --store ... --port ...: the same flags in both releases
        "--config",
        str(config),
    ]
    api, otlp = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['http']}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    server = start_server(old_command, ports, tmp_path / "previous.log", env, cwd=old)
    try:
        assert (old / "triage" / "cli.py").exists(), "the previous release's own command line runs it"
        done = _spans(
            "4500000001", "STM-ICU", [("erp", "POST /requisitions"), ("approval-saas", "approve"), ("erp", "send PO")]
        )
        waiting = _spans("4500000002", "STM-ICU", [("erp", "POST /requisitions")])
        for body in (done, waiting):
            assert httpx.post(otlp, content=body, headers=headers, timeout=10).status_code == 200
        before = _transactions(api, want=2)
        traces_before = {
            k: httpx.get(f"{api}/api/v1/transactions/{t['workflow']}/{k}").json() for k, t in before.items()
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert before["4500000001"]["state"] == "completed"
    assert before["4500000002"]["state"] == "stalled"
    assert before["4500000002"]["cause"]["kind"] == "awaiting_approval"

    new_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    command = [*serve_command(data, ports), "--config", str(config)]
    server = start_server(command, ports, tmp_path / "new.log", new_env, cwd=REPO)
    try:
        after = _transactions(api, want=2)
        for key, item in before.items():
            assert after[key]["state"] == item["state"], (key, after[key], item)
            assert after[key]["started_at"] == item["started_at"]
            detail = httpx.get(f"{api}/api/v1/transactions/{item['workflow']}/{key}").json()
            assert [e["step"] for e in detail["timeline"]] == [e["step"] for e in traces_before[key]["timeline"]]
            for event in detail["timeline"]:
                spans = httpx.get(f"{api}/api/v1/traces/{event['trace_id']}").json()["spans"]
                assert spans, f"the spans of {key} written by the previous release are served"
        # And the new version ingests beside the old data, through its write-ahead log.
        fresh = _spans("4500000003", "STM-ICU", [("erp", "POST /requisitions")])
        assert httpx.post(otlp, content=fresh, headers=headers, timeout=10).status_code == 200
        deadline = time.time() + 60
        while "4500000003" not in _transactions(api, want=0) and time.time() < deadline:
            time.sleep(0.5)
        assert "4500000003" in _transactions(api, want=0)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert "event=migrations_applied" in (tmp_path / "new.log").read_text(), "the upgrade migrated the store"
