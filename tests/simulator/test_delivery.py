"""The simulator's telemetry is not lost to backpressure: a batch Triage refuses is offered again.

The SDK's OTLP/HTTP exporter gives a batch up when a Retry-After is longer than what is left of its
own timeout; the ground truth counts every span handed to the SDK as sent, so a batch given up
silently turns every score against it wrong. A real receiver on loopback refuses the first requests
with 429 and a long Retry-After, as Triage's does while its write buffer is full.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from simulator import telemetry as telemetry_module
from simulator.observe import Observer
from simulator.telemetry import Telemetry
from simulator.truth import HealthLedger
from tests.conftest import free_port
from triage.settings import load_settings


class Receiver(ThreadingHTTPServer):
    refuse: int  # requests still to refuse
    refused: int = 0
    spans: int = 0


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.refuse > 0:
            self.server.refuse -= 1
            self.server.refused += 1
            self.send_response(429)
            self.send_header("Retry-After", "30")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            self.server.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", free_port()), Handler)
    server.refuse = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _telemetry(receiver: Receiver) -> Telemetry:
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    ledger = HealthLedger(60.0, 0.2, 3)
    return Telemetry(url, url, None, Observer(load_settings(None, {}, environ={})), ledger)


def _send(telemetry: Telemetry, n: int) -> None:
    for i in range(n):
        telemetry.span(None, "erp-procurement", f"op {i}", SpanKind.SERVER, 1_000 + i, 2_000 + i, {})


def test_a_refused_batch_is_offered_again_until_taken(receiver: Receiver) -> None:
    receiver.refuse = 2  # each refusal's Retry-After (30 s) is longer than the SDK exporter's whole timeout
    telemetry = _telemetry(receiver)
    try:
        _send(telemetry, 25)
        assert telemetry.export(timeout=30.0), "the batch was not taken"
        assert receiver.refused == 2
        assert receiver.spans == 25
        assert telemetry.lost == 0
    finally:
        telemetry.close()


def test_a_batch_refused_for_longer_than_the_patience_is_counted_lost(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry_module, "PATIENCE", 1.5)
    receiver.refuse = 1_000
    telemetry = _telemetry(receiver)
    try:
        _send(telemetry, 7)
        assert not telemetry.export(timeout=30.0), "a lost batch must make export() say so"
        assert telemetry.lost == 7
        assert receiver.spans == 0
    finally:
        telemetry.close()
