"""A purchase-order-to-receipt estate the demo does not have, as hospital estates really run it: a
nightly receiving batch that posts many POs in one span (an OTLP array, and a list in a string), a
capital-committee review only for large POs, a biomedical check only for biomed orders, the PO sent by
EDI or by the supplier portal, a Kafka hop watched only through a kafka_exporter endpoint (the shared
sample, served over HTTP), three spellings of every PO number, a loop, a late batch, duplicate
deliveries and a decoy failure. Real OTLP through the SDK to a running server; every verdict is
checked against the scenario's ground truth."""

from __future__ import annotations

import functools
import http.server
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context

from correlator import Correlator
from tests.conftest import LiveServer, server_settings
from tests.correlator.test_scenarios import states, verdict

KAFKA_QUEUE = "kafka/erp.po.out/po-dispatch"  # the exporter's queue: <entry>/<topic>/<group>
MINUTE = 60 * 10**9

WORKFLOW: dict[str, Any] = {
    "name": "po_to_receipt",
    "keys": ["erp.po_number", "edi.po", "portal.po_ref", "po.ids"],
    "key_patterns": [r"\bPO[- ]?(\d{1,10})\b"],
    # The ERP pads to ten digits, EDI drops the zeros, the portal writes PO-<ten digits>.
    "key_format": {"strip_prefixes": ["PO-"], "strip_leading_zeros": True, "pad_to": 10},
    "facility": "facility.id",
    "value": "erp.amount",
    "steps": [
        {"name": "po_created", "match": {"service": "erp-procurement", "span_name": "create PO"}},
        {"name": "approval", "match": {"service": "approval-saas", "span_name": "approve"}, "human": True,
         "sla": {"normal": "4h"}},
        {"name": "capital_review", "match": {"service": "capital-committee", "span_name": "review"},
         "human": True, "when": {"min_value": 250000}, "sla": {"normal": "2h"}},
        {"one_of": [
            {"name": "po_sent_edi", "match": {"service": "edi-translator", "span_name": "send 850"},
             "sla": {"normal": "30m"}},
            [{"name": "po_published", "match": {"service": "supplier-portal", "span_name": "publish PO"},
              "sla": {"normal": "2h"}}],
        ]},
        {"name": "supplier_ack", "match": {"log_pattern": "ACK received"}, "optional": True,
         "sla": {"normal": "10m"}},
        {"name": "dispatched", "match": {"service": "erp-integration", "kind": "producer"}, "sla": {"normal": "1h"}},
        {"name": "wms_accepted", "match": {"service": "wms", "kind": "consumer"}, "sla": {"normal": "30m"}},
        {"name": "biomed_check", "match": {"service": "biomed", "span_name": "inspect"}, "human": True,
         "when": {"attributes": {"po.category": "biomed"}}, "sla": {"normal": "1h"}},
        {"name": "received", "match": {"service": "receiving-batch", "span_name": "post receipts"},
         "sla": {"normal": "1d"}},
    ],
    "terminal": ["received"],
}  # fmt: skip


def erp(n: int) -> str:
    return f"{n:010d}"


class Estate:
    """The estate's services, each exporting OTLP/HTTP to the server; the ERP delivers every span twice."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.providers: list[TracerProvider] = []
        self.now = time.time_ns()
        self.tracers: dict[str, Tracer] = {}

    def tracer(self, service: str) -> Tracer:
        if service not in self.tracers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            copies = 2 if service == "erp-procurement" else 1  # at-least-once delivery: every span twice
            for _ in range(copies):
                exporter = OTLPSpanExporter(endpoint=f"{self.server.otlp_http}/v1/traces")
                provider.add_span_processor(SimpleSpanProcessor(exporter))
            self.providers.append(provider)
            self.tracers[service] = provider.get_tracer("estate")
        return self.tracers[service]

    def span(
        self,
        service: str,
        name: str,
        minutes_ago: float,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: Span | None = None,
        links: list[Link] | None = None,
        error: str | None = None,
        **attributes: Any,
    ) -> Span:
        at = self.now - int(minutes_ago * MINUTE)
        context = set_span_in_context(parent) if parent is not None else None
        span = self.tracer(service).start_span(
            name, context=context, kind=kind, start_time=at, links=links, attributes=attributes
        )
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=at + 10**6)
        return span

    def created(self, n: int, minutes_ago: float, amount: float, **extra: Any) -> None:
        self.span(
            "erp-procurement", "create PO", minutes_ago, SpanKind.SERVER,
            **{"erp.po_number": erp(n), "facility.id": "CLN-04", "erp.amount": amount, **extra},
        )  # fmt: skip

    def approved(self, n: int, minutes_ago: float) -> None:
        self.span("approval-saas", "approve", minutes_ago, SpanKind.SERVER, **{"portal.po_ref": f"PO-{erp(n)}"})

    def capital(self, n: int, minutes_ago: float) -> None:
        self.span("capital-committee", "review", minutes_ago, **{"erp.po_number": erp(n)})

    def edi(self, n: int, minutes_ago: float) -> None:
        self.span("edi-translator", "send 850", minutes_ago, SpanKind.CLIENT, **{"edi.po": str(n)})

    def portal(self, n: int, minutes_ago: float) -> None:
        self.span("supplier-portal", "publish PO", minutes_ago, SpanKind.SERVER, **{"portal.po_ref": f"PO-{erp(n)}"})

    def dispatched(self, n: int, minutes_ago: float) -> Span:
        """The ERP puts the PO on the Kafka topic erp.po.out: no message id, as Kafka clients often send."""
        return self.span(
            "erp-integration", "erp.po.out publish", minutes_ago, SpanKind.PRODUCER,
            **{"erp.po_number": erp(n), "messaging.system": "kafka", "messaging.destination.name": "erp.po.out"},
        )  # fmt: skip

    def wms(self, minutes_ago: float, producer: Span | None = None, n: int | None = None) -> None:
        """The warehouse consumes the dispatch message: linked to the producer, or naming the PO itself."""
        attrs: dict[str, Any] = {"messaging.system": "kafka", "messaging.destination.name": "erp.po.out"}
        if n is not None:
            attrs["erp.po_number"] = erp(n)
        links = [Link(producer.get_span_context())] if producer is not None else None
        self.span("wms", "erp.po.out process", minutes_ago, SpanKind.CONSUMER, links=links, **attrs)

    def through_wms(self, n: int, minutes_ago: float) -> None:
        producer = self.dispatched(n, minutes_ago)
        self.wms(minutes_ago - 10, producer=producer)

    def close(self) -> None:
        for provider in self.providers:
            provider.shutdown()


@pytest.fixture(scope="module")
def exporter(shared_data: Path) -> Iterator[str]:
    """The shared kafka_exporter sample (topic erp.po.out, group po-dispatch, 23,917 behind, no members)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_data / "queue-lag"))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/kafka_exporter.txt"
    server.shutdown()
    server.server_close()


@pytest.fixture
def estate(chdb_path: Path, exporter: str) -> Iterator[tuple[LiveServer, Estate, Correlator]]:
    config = {
        "facilities": [{"id": "CLN-04", "name": "Eastside Clinic", "criticality": "normal"}],
        "workflows": [WORKFLOW],
        "queues": [{"name": "kafka", "kind": "prometheus", "url": exporter, "interval": "1s"}],
        "correlation": {"enabled": False, "settle": 0.5},
    }
    server = LiveServer(server_settings(chdb_path, **config)).start()
    assert server.runtime is not None
    correlator = Correlator(server.store, server.runtime.settings)
    estate = Estate(server)
    try:
        yield server, estate, correlator
    finally:
        estate.close()
        server.stop()


def cycle(server: LiveServer, correlator: Correlator) -> dict[str, dict[str, Any]]:
    server.flush()
    time.sleep(0.6)  # past the settle time
    correlator.run_once()
    return states(server)


def send_logs(server: LiveServer, service: str, lines: list[str], level: int = logging.INFO) -> None:
    """An engine's log lines over OTLP: keys in their bodies, no trace id."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{server.otlp_http}/v1/logs")))
    logger = logging.getLogger(f"estate.{service}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    for line in lines:
        logger.log(level, line)
    logger.removeHandler(handler)
    provider.shutdown()


def wait_for_queue(server: LiveServer, name: str) -> None:
    """Until the queue has been polled once and `GET /api/v1/queues` lists it."""
    deadline = time.time() + 15
    while name not in {q["name"] for q in httpx.get(f"{server.api}/api/v1/queues").json()}:
        assert time.time() < deadline, f"{name} is polled"
        time.sleep(0.2)


def test_po_to_receipt_estate_matches_ground_truth(estate: tuple[LiveServer, Estate, Correlator]) -> None:
    server, e, correlator = estate
    wait_for_queue(server, KAFKA_QUEUE)  # the exporter has been scraped once

    # 101, 102, 104: received by the nightly batch (an array of three spellings); 102 went by the portal.
    e.created(101, 600, 5_000)
    e.approved(101, 540)
    e.edi(101, 530)
    e.through_wms(101, 520)
    e.created(102, 600, 8_000)
    e.approved(102, 500)
    e.portal(102, 400)
    e.dispatched(102, 390)
    e.wms(380, n=102)
    e.created(104, 600, 3_000)
    e.approved(104, 590)
    e.edi(104, 580)
    e.through_wms(104, 570)
    # 103: a large PO that passed the capital committee; its receipt comes in a later, late batch.
    e.created(103, 600, 400_000)
    e.approved(103, 500)
    e.capital(103, 300)
    e.edi(103, 290)
    e.through_wms(103, 280)
    # 105: large, approved 5 h ago; the committee's 2 h are over and nobody reviewed it.
    e.created(105, 600, 600_000)
    e.approved(105, 300)
    # 106: small, approved 90 min ago: EDI's 30 min are over, but the portal's 2 h are not; the
    # committee's SLA does not apply to it.
    e.created(106, 200, 2_000)
    e.approved(106, 90)
    # 107: small, approved 200 min ago, sent neither way.
    e.created(107, 400, 2_000)
    e.approved(107, 200)
    # 108: its dispatch message sits in erp.po.out, which the exporter shows stopped; 109 was just sent.
    for n, sent in ((108, 300), (109, 10)):
        e.created(n, 600, 5_000)
        e.approved(n, 500)
        e.edi(n, 490)
        e.dispatched(n, sent)
    # 110, 111: acknowledged by one engine log line naming both; 112: no acknowledgement (optional).
    for n, sent in ((110, 40), (111, 100), (112, 40)):
        e.created(n, 300, 5_000)
        e.approved(n, 200)
        e.edi(n, sent)
    # 113: sent back after approval, amended, approved again 30 min ago (a loop).
    e.created(113, 600, 5_000)
    e.approved(113, 500)
    e.created(113, 400, 5_000)
    e.approved(113, 30)
    # 114, 115: a nightly status sync names both in one span; its call for 114 fails.
    for n in (114, 115):
        e.created(n, 300, 5_000)
        e.approved(n, 60)
    sync = e.span("erp-integration", "sync PO status", 20, **{"po.ids": [erp(114), erp(115)]})
    e.span(
        "erp-integration", "PUT supplier-portal /status", 20, SpanKind.CLIENT, parent=sync,
        error="supplier-portal returned 503",
        **{"erp.po_number": erp(114), "peer.service": "supplier-portal", "http.response.status_code": 503},
    )  # fmt: skip
    # 117: a biomedical order waits on its inspection (only biomed orders have one).
    e.created(117, 600, 5_000, **{"po.category": "biomed"})
    e.approved(117, 500)
    e.edi(117, 490)
    e.through_wms(117, 480)
    # The nightly receiving batch: one span, three POs as an OTLP array in three spellings.
    e.span("receiving-batch", "post receipts", 60, **{"po.ids": [erp(101), f"PO-{erp(102)}", "104"]})
    send_logs(server, "mirth", [f"ACK received for PO-{erp(110)} and PO {111}"])
    # A decoy: an unrelated service fails all the time.
    for _ in range(10):
        e.span("inventory-api", "GET /stock", 5, SpanKind.SERVER, error="inventory db down")

    first = cycle(server, correlator)
    assert verdict(first[erp(103)]) == ("in_progress", None, None)
    assert first[erp(103)]["current_step"] == "wms_accepted"
    # All of it arrived late (stamped hours ago): overdue work is not called stuck while it is arriving...
    assert verdict(first[erp(105)]) == ("in_progress", None, None) and first[erp(105)]["next_step"] == "capital_review"

    # The second receiving batch arrives late, as a string of keys; it lists 104 again.
    e.span("receiving-batch", "post receipts", 30, **{"po.ids": f"{erp(103)}; 104"})
    now = cycle(server, correlator)
    truth = {
        101: ("completed", None, None),
        102: ("completed", None, None),
        103: ("completed", None, None),
        104: ("completed", None, None),
        105: ("stalled", "awaiting_approval", "capital-committee"),
        106: ("in_progress", None, None),
        107: ("stalled", "unknown", "po_published"),
        108: ("blocked", "queue_backlog", KAFKA_QUEUE),
        109: ("in_progress", None, None),
        110: ("in_progress", None, None),
        111: ("in_progress", None, None),
        112: ("in_progress", None, None),
        113: ("in_progress", None, None),
        114: ("blocked", "dependency_error", "supplier-portal"),
        115: ("in_progress", None, None),
        117: ("stalled", "awaiting_approval", "biomed"),
    }
    # ...the next cycle, with nothing late of them arriving, judges them.
    assert {int(k): verdict(v) for k, v in now.items()} == truth, "one key per PO, in canonical form"
    assert now[erp(101)]["current_step"] == "received" and now[erp(102)]["current_step"] == "received"
    assert now[erp(106)]["next_step"] == "po_published"
    assert [now[erp(n)]["current_step"] for n in (110, 111, 112)] == ["supplier_ack", "supplier_ack", "po_sent_edi"]
    assert now[erp(113)]["current_step"] == "approval"
    assert now[erp(105)]["next_step"] == "capital_review" and now[erp(105)]["value"] == 600_000

    detail = httpx.get(f"{server.api}/api/v1/transactions/po_to_receipt/PO-{erp(108)}").json()
    cause = detail["causes"][0]
    assert cause["evidence"]["queue"] == "erp.po.out"
    assert cause["evidence"]["backlog"] == 23917 and cause["evidence"]["queue_status"] == "stopped"
    # Any spelling finds the transaction; its timeline has each delivery once and the loop twice.
    loop = httpx.get(f"{server.api}/api/v1/transactions/po_to_receipt/113").json()
    assert [t["step"] for t in loop["timeline"] if t["step"]] == ["po_created", "approval", "po_created", "approval"]
    # The batch span is stored once, however many POs it moved.
    spans = server.store.command("SELECT count() FROM otel_traces WHERE SpanName = 'post receipts'")
    assert int(spans) == 2


def test_older_messaging_conventions_and_the_default_exchange(estate: tuple[LiveServer, Estate, Correlator]) -> None:
    server, e, correlator = estate
    # 120: an older instrumentation names the topic `messaging.destination` and the id `messaging.message_id`;
    # the consumer starts its own trace and shares only the message id.
    e.created(120, 300, 5_000)
    e.approved(120, 200)
    e.edi(120, 190)
    old = {"messaging.destination": "erp.po.out", "messaging.message_id": "m-120", "messaging.system": "kafka"}
    e.span("erp-integration", "erp.po.out send", 180, SpanKind.PRODUCER, **{"erp.po_number": erp(120), **old})
    e.span("wms", "erp.po.out receive", 170, SpanKind.CONSUMER, **old)
    # 121: published to RabbitMQ's default exchange: the queue is only in the routing key; never consumed.
    e.created(121, 300, 5_000)
    e.approved(121, 200)
    e.edi(121, 190)
    rabbit = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": "amq.default",
        "messaging.rabbitmq.destination.routing_key": "erp.po.out",
    }
    e.span("erp-integration", "publish", 180, SpanKind.PRODUCER, **{"erp.po_number": erp(121), **rabbit})
    wait_for_queue(server, KAFKA_QUEUE)
    server.flush()
    time.sleep(0.6)
    held = correlator.run_once().held
    assert verdict(states(server)[erp(121)]) == ("in_progress", None, None) and held >= 1, "late: held a cycle"
    now = cycle(server, correlator)
    assert now[erp(120)]["current_step"] == "wms_accepted" and verdict(now[erp(120)]) == ("in_progress", None, None)
    assert verdict(now[erp(121)]) == ("blocked", "queue_backlog", KAFKA_QUEUE)


def test_batch_keys_arrive_the_same_by_every_otlp_path(estate: tuple[LiveServer, Estate, Correlator]) -> None:
    """An array of keys means the same over OTLP/HTTP protobuf (above), OTLP/HTTP JSON and OTLP/gRPC."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

    server, e, correlator = estate
    for n in (130, 131, 132, 133):
        e.created(n, 300, 5_000)
    # OTLP/JSON, as an SDK in another language or a collector sends it: an arrayValue of strings and ints.
    start = e.now - 30 * MINUTE
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "receiving-batch"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "post receipts",
                                "kind": 1,
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": str(start + 10**6),
                                "attributes": [
                                    {
                                        "key": "po.ids",
                                        "value": {
                                            "arrayValue": {"values": [{"stringValue": erp(130)}, {"intValue": "131"}]}
                                        },
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    answer = httpx.post(f"{server.otlp_http}/v1/traces", json=body)
    assert answer.status_code == 200, answer.text
    # OTLP/gRPC from the SDK.
    provider = TracerProvider(resource=Resource.create({"service.name": "receiving-batch"}))
    provider.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(endpoint=server.otlp_grpc, insecure=True)))
    span = provider.get_tracer("estate").start_span(
        "post receipts", start_time=start, attributes={"po.ids": [erp(132), "133"]}
    )
    span.end(end_time=start + 10**6)
    provider.shutdown()
    cycle(server, correlator)
    now = cycle(server, correlator)
    assert {n: now[erp(n)]["state"] for n in (130, 131, 132, 133)} == dict.fromkeys((130, 131, 132, 133), "completed")
    stored = server.store.query(
        "SELECT SpanAttributes['po.ids'] FROM otel_traces WHERE SpanName = 'post receipts' ORDER BY 1"
    )
    assert sorted(r[0] for r in stored.result_rows) == [f'["{erp(130)}",131]', f'["{erp(132)}","133"]']
