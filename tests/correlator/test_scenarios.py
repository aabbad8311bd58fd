"""Scenarios with the real stack: services emit OTLP through the OpenTelemetry SDK to a running
server, hand work to each other through a real RabbitMQ queue (trace context in message headers
or span links), log with keys but no trace ids, deliver late and twice; the correlator's verdict
on every transaction is checked against the scenario's ground truth."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer

from correlator import Correlator
from tests.conftest import LiveServer, server_settings
from tests.workflows import (
    FACILITIES,
    PO_KEY_PATTERNS,
    PO_KEYS,
    SENT_TO_ERP_OUT,
    budget_approval,
    po_sent,
    procure_to_pay,
)

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def workflow_config(queue: str) -> dict[str, Any]:
    return {
        "facilities": FACILITIES,
        "workflows": [
            procure_to_pay(
                budget_approval(),
                po_sent(SENT_TO_ERP_OUT, sla="30m"),
                keys=PO_KEYS,
                key_patterns=PO_KEY_PATTERNS,
            )
        ],
        "queues": [{"name": "approvals", "kind": "rabbitmq", "url": AMQP, "queue": queue, "interval": "1s"}],
        "correlation": {"enabled": False, "settle": 0.5},
    }


class Estate:
    """The scenario's services: tracers exporting OTLP/HTTP to the server, a RabbitMQ channel."""

    def __init__(self, server: LiveServer, queue: str) -> None:
        self.server = server
        self.queue = queue
        self.providers: list[TracerProvider] = []
        self.erp = self.tracer("erp-procurement")
        self.saas = self.tracer("approval-saas")
        self.inventory = self.tracer("inventory-api")
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        self.channel = self.connection.channel()
        self.channel.queue_declare(queue=queue, durable=False, auto_delete=False)

    def tracer(self, service: str) -> Tracer:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{self.server.otlp_http}/v1/traces"))
        )
        self.providers.append(provider)
        return provider.get_tracer("scenario")

    def requisition(
        self, po: str, facility: str = "STM-ICU", amount: float = 182000.0, start: int | None = None
    ) -> None:
        with self.erp.start_as_current_span(
            "POST /requisitions",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={"erp.po_number": po, "facility.id": facility, "erp.amount": amount},
        ):
            pass

    def request_approval(self, po: str, facility: str = "STM-ICU") -> str:
        """requisition, then publish the approval request to RabbitMQ with the trace context in its headers."""
        message_id = f"msg-{po}"
        with self.erp.start_as_current_span(
            "POST /requisitions",
            kind=SpanKind.SERVER,
            attributes={"erp.po_number": po, "facility.id": facility, "erp.amount": 182000.0},
        ):
            with self.erp.start_as_current_span(
                f"{self.queue} publish",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.destination.name": self.queue,
                    "messaging.message.id": message_id,
                },
            ):
                headers: dict[str, str] = {}
                inject(headers)
                self.channel.basic_publish(
                    "", self.queue, po.encode(), pika.BasicProperties(headers=headers, message_id=message_id)
                )
        return message_id

    def receive_approval_request(self, link_only: bool = False) -> tuple[str, Any]:
        """approval-saas takes one request off the queue: same trace (headers) or a new trace with a link."""
        method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
        assert method is not None, "the approval request is on the real queue"
        parent = extract(properties.headers or {})
        from opentelemetry.trace import get_current_span

        producer = get_current_span(parent).get_span_context()
        attrs = {
            "messaging.system": "rabbitmq",
            "messaging.destination.name": self.queue,
            "messaging.message.id": properties.message_id,
        }
        if link_only:
            span = self.saas.start_span(
                f"{self.queue} receive",
                kind=SpanKind.CONSUMER,
                links=[Link(producer)],
                attributes=attrs,
                context=otel_context.Context(),
            )
        else:
            span = self.saas.start_span(
                f"{self.queue} receive", kind=SpanKind.CONSUMER, context=parent, attributes=attrs
            )
        span.end()
        return body.decode(), span

    def approve_and_send(self, consumer_span: Any, with_key: bool) -> None:
        from opentelemetry.trace import set_span_in_context

        ctx = set_span_in_context(consumer_span)
        with self.saas.start_as_current_span("approve", context=ctx, kind=SpanKind.SERVER):
            pass
        attrs: dict[str, Any] = {"messaging.destination.name": "erp.po.out", "messaging.system": "rabbitmq"}
        with self.erp.start_as_current_span("send PO", context=ctx, kind=SpanKind.PRODUCER, attributes=attrs):
            pass

    def call_approval_saas(self, status: int, error: str | None = None) -> None:
        """The ERP's own call to approval-saas; a 5xx fails it with `error` ("approval-saas returned <status>")."""
        with self.erp.start_as_current_span(
            "POST approval-saas /requests",
            kind=SpanKind.CLIENT,
            attributes={"peer.service": "approval-saas", "http.response.status_code": status},
        ) as call:
            if status >= 500:
                call.set_status(Status(StatusCode.ERROR, error or f"approval-saas returned {status}"))

    def close(self) -> None:
        for provider in self.providers:
            provider.shutdown()
        self.channel.queue_delete(self.queue)
        self.connection.close()


@pytest.fixture
def scenario(chdb_path: Path) -> Iterator[tuple[LiveServer, Estate, Correlator]]:
    queue = f"wf.approvals.{uuid.uuid4().hex[:8]}"
    server = LiveServer(server_settings(chdb_path, **workflow_config(queue))).start()
    estate = Estate(server, queue)
    assert server.runtime is not None
    correlator = Correlator(server.store, server.runtime.settings)
    try:
        yield server, estate, correlator
    finally:
        estate.close()
        server.stop()


def cycle(server: LiveServer, correlator: Correlator, now: datetime | None = None) -> None:
    server.flush()
    time.sleep(0.6)  # past the correlator's settle time
    correlator.run_once(now)


def states(server: LiveServer) -> dict[str, dict[str, Any]]:
    items = httpx.get(f"{server.api}/api/v1/transactions", params={"limit": 1000}).json()["items"]
    return {item["key"]: item for item in items}


def verdict(item: dict[str, Any]) -> tuple[str, str | None, str | None]:
    cause = item["cause"]
    return item["state"], cause["kind"] if cause else None, cause["component"] if cause else None


def test_procure_to_pay_scenarios_match_ground_truth(scenario: tuple[LiveServer, Estate, Correlator]) -> None:
    server, estate, correlator = scenario
    # PO 1: approved and sent, context carried across RabbitMQ in the message headers.
    estate.request_approval("4500000001")
    # PO 2: the approval request reached approval-saas, nobody approved it.
    estate.request_approval("4500000002")
    _, consumer1 = estate.receive_approval_request()
    _, consumer2 = estate.receive_approval_request()
    estate.approve_and_send(consumer1, with_key=False)
    # PO 3: the approval request sits in the queue (nobody consumes it).
    estate.request_approval("4500000003")
    # PO 4: the ERP's own call to approval-saas fails with 503.
    with estate.erp.start_as_current_span(
        "POST /requisitions", kind=SpanKind.SERVER, attributes={"erp.po_number": "4500000004", "facility.id": "STM-ICU"}
    ):
        estate.call_approval_saas(503, "approval-saas returned 503 Service Unavailable")
    # PO 5: the integration engine cannot map the supplier's message; its log has the PO but no trace id.
    estate.requisition("4500000005", facility="CLN-04", amount=950.0)
    logs = LoggerProvider(resource=Resource.create({"service.name": "mirth"}))
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{server.otlp_http}/v1/logs")))
    engine_log = logging.getLogger("scenario.mirth")
    engine_log.propagate = False
    handler = LoggingHandler(logger_provider=logs)
    engine_log.addHandler(handler)
    engine_log.error(
        "channel supplier-orders: mapping failed for PO 4500000005: missing field UOM",
        extra={"channel": "supplier-orders"},
    )
    # PO 8: just started, healthy.
    estate.requisition("4500000008")
    # An unrelated service fails a lot: it must not be blamed for anything.
    for _ in range(10):
        with estate.inventory.start_as_current_span(
            "GET /stock", kind=SpanKind.SERVER, attributes={"http.response.status_code": 503}
        ) as bad:
            bad.set_status(Status(StatusCode.ERROR, "inventory db down"))

    cycle(server, correlator)
    now = states(server)
    assert verdict(now["4500000001"]) == ("completed", None, None)
    assert verdict(now["4500000002"]) == ("in_progress", None, None)
    assert verdict(now["4500000003"]) == ("in_progress", None, None)
    assert verdict(now["4500000004"]) == ("blocked", "dependency_error", "approval-saas")
    assert verdict(now["4500000005"]) == ("failed", "transformation_failed", "supplier-orders")
    assert verdict(now["4500000008"]) == ("in_progress", None, None), "a healthy transaction is never stalled"
    assert now["4500000005"]["facility_name"] == "Eastside Clinic" and now["4500000005"]["value"] == 950.0
    assert now["4500000002"]["criticality"] == "critical"

    # Two hours later: the human step is overdue, the queued request never moved.
    deadline = time.time() + 10
    while not httpx.get(f"{server.api}/api/v1/queues").json() and time.time() < deadline:
        time.sleep(0.2)
    later = datetime.now(UTC) + timedelta(hours=2)
    correlator.run_once(later)
    after = states(server)
    assert verdict(after["4500000002"]) == ("stalled", "awaiting_approval", "approval-saas")
    assert verdict(after["4500000003"]) == ("blocked", "queue_backlog", "approvals")
    assert "inventory-api" not in {item["cause"]["component"] for item in after.values() if item["cause"]}
    stuck = httpx.get(f"{server.api}/api/v1/transactions", params={"state": "stalled,blocked"}).json()["items"]
    assert {i["key"] for i in stuck} == {"4500000002", "4500000003", "4500000004", "4500000008"}
    bad = httpx.get(f"{server.api}/api/v1/transactions", params={"state": "stuck"})
    assert bad.status_code == 422 and "unknown state stuck" in bad.text
    page = httpx.get(f"{server.api}/api/v1/transactions", params={"limit": 2}).json()
    rest = httpx.get(f"{server.api}/api/v1/transactions", params={"limit": 100, "cursor": page["next"]}).json()
    assert len(page["items"]) == 2 and rest["next"] is None
    assert {i["key"] for i in page["items"]} | {i["key"] for i in rest["items"]} == set(after)
    # The most urgent first: stuck critical work above the rest, completed last.
    keys = [item["key"] for item in httpx.get(f"{server.api}/api/v1/transactions").json()["items"]]
    assert keys[-1] == "4500000001"

    detail = httpx.get(f"{server.api}/api/v1/transactions/procure_to_pay/4500000003").json()
    assert [t["step"] for t in detail["timeline"] if t["step"]] == ["requisition"]
    assert detail["causes"][0]["kind"] == "queue_backlog"
    assert detail["causes"][0]["evidence"]["queue"] == estate.queue
    grouped = httpx.get(f"{server.api}/api/v1/causes").json()
    assert {(g["kind"], g["component"], g["count"]) for g in grouped} == {
        ("queue_backlog", "approvals", 1),
        ("awaiting_approval", "approval-saas", 2),  # PO 2, and PO 8 which is now overdue too
        ("dependency_error", "approval-saas", 1),
        ("transformation_failed", "supplier-orders", 1),
    }
    engine_log.removeHandler(handler)
    logs.shutdown()


def test_link_only_hop_late_span_and_duplicates(scenario: tuple[LiveServer, Estate, Correlator]) -> None:
    server, estate, correlator = scenario
    # PO 9: approval-saas starts a new trace that only links to the producer; the PO is sent from there.
    estate.request_approval("4500000009")
    _, consumer = estate.receive_approval_request(link_only=True)
    estate.approve_and_send(consumer, with_key=False)
    # PO 6: the approval arrives first...
    t0 = time.time_ns() - 600 * 10**9
    with estate.saas.start_as_current_span(
        "approve", kind=SpanKind.SERVER, start_time=t0 + 60 * 10**9, attributes={"po.number": "4500000006"}
    ):
        pass
    cycle(server, correlator)
    first = states(server)
    assert verdict(first["4500000009"]) == ("completed", None, None)
    assert first["4500000006"]["current_step"] == "budget_approval"
    assert first["4500000006"]["started_at"].startswith(
        datetime.fromtimestamp((t0 + 60 * 10**9) / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    )

    # ...the requisition, which happened a minute earlier, arrives late; and everything is delivered twice.
    estate.requisition("4500000006", start=t0)
    estate.requisition("4500000006", start=t0)
    cycle(server, correlator)
    correlator.run_once()
    second = states(server)
    assert second["4500000006"]["started_at"].startswith(
        datetime.fromtimestamp(t0 / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    ), "late data moves the start back"
    assert second["4500000006"]["current_step"] == "budget_approval"
    detail = httpx.get(f"{server.api}/api/v1/transactions/procure_to_pay/4500000006").json()
    assert [t["step"] for t in detail["timeline"] if t["step"]].count("requisition") == 2, "two distinct spans"
    assert second["4500000009"] == first["4500000009"] | {"updated_at": second["4500000009"]["updated_at"]}


def test_background_correlator_in_serve_reaches_the_api(chdb_path: Path) -> None:
    queue = f"wf.approvals.{uuid.uuid4().hex[:8]}"
    config = workflow_config(queue)
    config["correlation"] = {"interval": 0.5, "settle": 0.2}
    server = LiveServer(server_settings(chdb_path, **config)).start()
    estate = Estate(server, queue)
    try:
        estate.requisition("4500000077")
        deadline = time.time() + 20
        found: dict[str, Any] = {}
        while time.time() < deadline and "4500000077" not in found:
            time.sleep(0.3)
            found = states(server)
        assert verdict(found["4500000077"]) == ("in_progress", None, None)
        # The gauges follow within correlation.gauges_every (2s) of the state the API shows.
        gauge = 'triage_transactions{criticality="critical",state="in_progress",workflow="procure_to_pay"} 1.0'
        deadline = time.time() + 8
        metrics = httpx.get(f"{server.api}/metrics").text
        while gauge not in metrics and time.time() < deadline:
            time.sleep(0.2)
            metrics = httpx.get(f"{server.api}/metrics").text
        assert gauge in metrics
        assert "triage_correlator_lag_seconds" in metrics
    finally:
        estate.close()
        server.stop()


def test_replay_rebuilds_lost_transactions_through_the_api(scenario: tuple[LiveServer, Estate, Correlator]) -> None:
    server, estate, correlator = scenario
    started = datetime.now(UTC) - timedelta(seconds=5)
    estate.request_approval("4500000031")
    _, consumer = estate.receive_approval_request()
    estate.approve_and_send(consumer, with_key=False)
    estate.requisition("4500000032")
    cycle(server, correlator)
    before = {k: verdict(v) for k, v in states(server).items()}
    assert before == {"4500000031": ("completed", None, None), "4500000032": ("in_progress", None, None)}

    for table in ("business_transactions", "business_events", "trace_keys", "trace_edges"):
        server.store.command(f"TRUNCATE TABLE {table}")
    assert states(server) == {}
    response = httpx.post(
        f"{server.api}/api/v1/replay",
        params={"from": started.isoformat(), "to": datetime.now(UTC).isoformat()},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["evaluated"] == 2
    assert {k: verdict(v) for k, v in states(server).items()} == before
    bad = httpx.post(
        f"{server.api}/api/v1/replay", params={"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}
    )
    assert bad.status_code == 422 and "`to` must be after `from`" in bad.text


def test_a_successful_retry_unblocks(scenario: tuple[LiveServer, Estate, Correlator]) -> None:
    server, estate, correlator = scenario
    attrs = {"erp.po_number": "4500000041", "facility.id": "STM-ICU"}
    with estate.erp.start_as_current_span("POST /requisitions", kind=SpanKind.SERVER, attributes=attrs):
        for status in (503, 503, 202):
            estate.call_approval_saas(status)
            time.sleep(0.01)
    with estate.erp.start_as_current_span(
        "POST /requisitions", kind=SpanKind.SERVER, attributes={**attrs, "erp.po_number": "4500000042"}
    ):
        estate.call_approval_saas(503)
    cycle(server, correlator)
    now = states(server)
    assert verdict(now["4500000041"]) == ("in_progress", None, None), "the retry went through"
    assert verdict(now["4500000042"]) == ("blocked", "dependency_error", "approval-saas")
