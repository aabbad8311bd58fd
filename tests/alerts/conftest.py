"""Alerting fixtures: a real Alertmanager (and Prometheus) on loopback ports, a webhook receiver,
a Triage server whose background evaluator runs, and a procure-to-pay estate that blocks and fixes
purchase orders through the OpenTelemetry SDK."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from correlator import Correlator
from tests.conftest import LiveServer, free_port, serve_posts
from tests.workflows import FACILITIES, SENT_TO_ERP_OUT, budget_approval, po_sent, procure_to_pay

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
PO_WORKFLOW: dict[str, Any] = {
    "facilities": FACILITIES,
    "workflows": [procure_to_pay(budget_approval(), po_sent(SENT_TO_ERP_OUT))],
    "correlation": {"enabled": False, "settle": 0.5},
}


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until `check()` is truthy; return its value or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def need(binary: str) -> None:
    if not shutil.which(binary):
        pytest.fail(
            f"{binary} is missing: apt-get install prometheus prometheus-alertmanager (scripts/setup.sh --test)"
        )


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server that records every POST; `fail_first[path] = n` answers 503 to the first n."""

    requests: list[Request] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)
    always_fail: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        self.server = serve_posts(self._record)
        return self

    def _record(self, request: BaseHTTPRequestHandler) -> int:
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        with self.lock:
            left = self.fail_first.get(request.path, 0)
            failing = left > 0 or request.path in self.always_fail
            if left > 0:
                self.fail_first[request.path] = left - 1
            code = 503 if failing else 200
            self.requests.append(Request(request.path, dict(request.headers), body, code, time.time()))
        return code

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str, answered: int | None = 200) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path and (answered is None or r.answered == answered)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Program:
    """A real Prometheus or Alertmanager process on a free loopback port with a temporary data dir."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{argv[0]} did not become ready:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Alertmanager(Program):
    """Alertmanager whose one receiver posts to `receiver` at /am."""

    def __init__(self, tmp: Path, receiver: Receiver) -> None:
        need(ALERTMANAGER)
        self.receiver = receiver
        config = tmp / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: ['alertname', 'workflow', 'facility', 'queue', 'service']\n"
            "  group_wait: 100ms\n"
            "  group_interval: 500ms\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: {receiver.url('/am')}\n"
            "        send_resolved: true\n"
        )
        port = free_port()
        argv = [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        super().__init__(argv, port, tmp / "alertmanager.log")

    def alerts(self, alertname: str, **params: Any) -> list[dict[str, Any]]:
        """Alertmanager's own view (GET /api/v2/alerts) of the alerts with this name."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"', **params})
        response.raise_for_status()
        return list(response.json())

    def notifications(self, alertname: str, status: str | None = None) -> list[dict[str, Any]]:
        """Alerts in the notifications Alertmanager sent its webhook receiver, oldest first."""
        out = []
        for request in self.receiver.received("/am"):
            for alert in request.json["alerts"]:
                if alert["labels"].get("alertname") == alertname and (status is None or alert["status"] == status):
                    out.append(alert)
        return out


def paging(alertmanager: Alertmanager, receiver: Receiver, hook: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """`alerts:` settings that send to Alertmanager and to the receiver at `hook`, evaluated every
    300 ms and resent every second."""
    return {
        "alertmanager_url": alertmanager.url,
        "webhooks": [{"url": receiver.url(hook)}],
        "interval": "300ms",
        "resend_interval": "1s",
        "rules": rules,
    }


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path_factory.mktemp("alertmanager"), receiver)
    yield am
    am.stop()


class AlertServer(LiveServer):
    """`triage serve` in a thread of this process (its alert evaluator runs in the background)."""

    def correlate(self) -> None:
        """Write what was sent, then one correlation cycle (the test drives the correlator)."""
        assert self.runtime is not None
        assert self.runtime.pipeline.flush(30), "pipeline did not flush within 30 s"
        time.sleep(0.6)  # past the correlator's settle time
        Correlator(self.store, self.runtime.settings).run_once()

    def alerts(self, state: str = "active") -> list[dict[str, Any]]:
        response = httpx.get(f"{self.api}/api/v1/alerts", params={"state": state})
        response.raise_for_status()
        return list(response.json())

    def drop(self) -> None:
        self.store.command(f"DROP DATABASE IF EXISTS `{self.store.target.database}`")


class Estate:
    """The ERP and the approval SaaS, exporting OTLP/HTTP to the server through the SDK."""

    def __init__(self, server: AlertServer) -> None:
        self.providers: list[TracerProvider] = []
        self.erp = self._tracer(server, "erp-procurement")
        self.saas = self._tracer(server, "approval-saas")

    def _tracer(self, server: AlertServer, service: str) -> Tracer:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.otlp_http}/v1/traces")))
        self.providers.append(provider)
        return provider.get_tracer("alert-tests")

    def block_po(self, po: str, facility: str = "STM-ICU", amount: float = 182000.0) -> None:
        """A requisition whose call to approval-saas fails with 503: blocked, dependency_error."""
        attrs = {"erp.po_number": po, "facility.id": facility, "erp.amount": amount}
        with self.erp.start_as_current_span("POST /requisitions", kind=SpanKind.SERVER, attributes=attrs):
            call_attrs = {"peer.service": "approval-saas", "http.response.status_code": 503}
            with self.erp.start_as_current_span(
                "POST approval-saas /requests", kind=SpanKind.CLIENT, attributes=call_attrs
            ) as call:
                call.set_status(Status(StatusCode.ERROR, "approval-saas returned 503 Service Unavailable"))

    def fix_po(self, po: str) -> None:
        """The retry succeeds, the budget is approved and the PO goes out: completed."""
        attrs = {"erp.po_number": po, "peer.service": "approval-saas", "http.response.status_code": 201}
        with self.erp.start_as_current_span("POST approval-saas /requests", kind=SpanKind.CLIENT, attributes=attrs):
            with self.saas.start_as_current_span("approve", kind=SpanKind.SERVER):
                pass
        send = {"erp.po_number": po, "messaging.destination.name": "erp.po.out", "messaging.system": "rabbitmq"}
        with self.erp.start_as_current_span("send PO", kind=SpanKind.PRODUCER, attributes=send):
            pass

    def close(self) -> None:
        for provider in self.providers:
            provider.shutdown()


def unique(name: str) -> str:
    """Rule names differ per test: one Alertmanager serves the whole session."""
    return f"{name}_{uuid.uuid4().hex[:6]}"
