"""The real OpenTelemetry SDK exporters (HTTP and gRPC) send to a running server; rows are read back."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.conftest import LiveServer

EXPORTERS = {
    "traces": (HttpSpanExporter, GrpcSpanExporter),
    "logs": (HttpLogExporter, GrpcLogExporter),
    "metrics": (HttpMetricExporter, GrpcMetricExporter),
}


def _exporter(server: LiveServer, transport: str, signal: str):  # type: ignore[no-untyped-def]
    """The SDK's OTLP exporter of `signal` to the server over `transport` (traces over HTTP gzipped)."""
    http, grpc = EXPORTERS[signal]
    if transport == "http":
        extra = {"compression": Compression.Gzip} if signal == "traces" else {}
        return http(endpoint=f"{server.otlp_http}/v1/{signal}", **extra)
    return grpc(endpoint=server.otlp_grpc, insecure=True)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_traces_land_in_otel_traces(live_server: LiveServer, transport: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"erp-{transport}", "deployment": "test"}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(live_server, transport, "traces")))
    tracer = provider.get_tracer("triage.tests", "1.2.3")
    with tracer.start_as_current_span(
        "POST /requisitions",
        kind=SpanKind.SERVER,
        attributes={
            "erp.po_number": "4500012345",
            "erp.amount": 182000.5,
            "retry": 0,
            "urgent": False,
            "tags": ["icu", "or"],
        },
    ) as root:
        root.add_event("validated", {"lines": 3})
        with tracer.start_as_current_span(
            "publish wf.approvals",
            kind=SpanKind.PRODUCER,
            links=[Link(root.get_span_context(), {"why": "fan-out"})],
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "approval-saas returned 503"))
    provider.shutdown()
    live_server.flush()

    trace_id = format(root.get_span_context().trace_id, "032x")
    rows = live_server.store.query(
        "SELECT SpanName, SpanKind, ServiceName, ParentSpanId, SpanAttributes, StatusCode, StatusMessage, "
        "Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, Links.Attributes, ScopeName, "
        "ScopeVersion, ResourceAttributes['deployment'], Duration "
        "FROM otel_traces WHERE TraceId = {t:String} ORDER BY SpanName",
        {"t": trace_id},
    ).result_rows
    assert [r[0] for r in rows] == ["POST /requisitions", "publish wf.approvals"]
    server_span, producer = rows
    assert server_span[1] == "Server" and producer[1] == "Producer"
    assert server_span[2] == f"erp-{transport}"
    assert server_span[3] == ""
    assert producer[3] == format(root.get_span_context().span_id, "016x")
    assert server_span[4] == {
        "erp.po_number": "4500012345",
        "erp.amount": "182000.5",
        "retry": "0",
        "urgent": "false",
        "tags": '["icu","or"]',
    }
    assert server_span[5] == "Unset"
    assert (producer[5], producer[6]) == ("Error", "approval-saas returned 503")
    assert server_span[7] == ["validated"] and server_span[8] == [{"lines": "3"}]
    assert producer[9] == [trace_id]
    assert producer[10] == [format(root.get_span_context().span_id, "016x")]
    assert producer[11] == [{"why": "fan-out"}]
    assert (server_span[12], server_span[13], server_span[14]) == ("triage.tests", "1.2.3", "test")
    assert server_span[15] > 0

    api = httpx.get(f"{live_server.api}/api/v1/traces/{trace_id.upper()}").json()
    assert {s["name"] for s in api["spans"]} == {"POST /requisitions", "publish wf.approvals"}
    assert all(s["trace_id"] == trace_id for s in api["spans"])


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_logs_land_in_otel_logs(live_server: LiveServer, transport: str) -> None:
    exporter = _exporter(live_server, transport, "logs")
    provider = LoggerProvider(resource=Resource.create({"service.name": f"mirth-{transport}"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = logging.getLogger(f"tests.sdk.{transport}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger.addHandler(handler)
    tracer_provider = TracerProvider()
    with tracer_provider.get_tracer("t").start_as_current_span("channel ADT") as span:
        logger.error("mapping failed for PO-4500012345", extra={"channel": "supplier-orders"})
    logger.info("channel idle")
    provider.shutdown()
    logger.removeHandler(handler)
    live_server.flush()

    rows = live_server.store.query(
        "SELECT Body, SeverityText, SeverityNumber, TraceId, SpanId, LogAttributes['channel'], ServiceName "
        "FROM otel_logs WHERE ServiceName = {s:String} ORDER BY Timestamp",
        {"s": f"mirth-{transport}"},
    ).result_rows
    assert [r[0] for r in rows] == ["mapping failed for PO-4500012345", "channel idle"]
    error = rows[0]
    assert error[1] == "ERROR" and error[2] == 17
    assert error[3] == format(span.get_span_context().trace_id, "032x")
    assert error[4] == format(span.get_span_context().span_id, "016x")
    assert error[5] == "supplier-orders"
    assert rows[1][3] == ""


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_metrics_land_in_metric_tables(live_server: LiveServer, transport: str) -> None:
    exporter = _exporter(live_server, transport, "metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=Resource.create({"service.name": f"erp-{transport}"}), metric_readers=[reader])
    meter = provider.get_meter("tests")
    meter.create_counter("po.created", unit="1").add(5, {"facility.id": "STM-ICU"})
    meter.create_histogram("approval.latency", unit="s").record(12.5, {"step": "budget_approval"})
    meter.create_observable_gauge("queue.backlog", callbacks=[lambda _: [Observation(1204, {"queue": "wf.approvals"})]])
    provider.shutdown()
    live_server.flush()

    service = f"erp-{transport}"
    s = live_server.store
    sums = s.query(
        "SELECT MetricName, Value, IsMonotonic, Attributes FROM otel_metrics_sum WHERE ServiceName = {s:String}",
        {"s": service},
    ).result_rows
    assert sums == [("po.created", 5.0, True, {"facility.id": "STM-ICU"})]
    hist = s.query(
        "SELECT MetricName, Count, Sum, Min, Max, length(BucketCounts) = length(ExplicitBounds) + 1 "
        "FROM otel_metrics_histogram WHERE ServiceName = {s:String}",
        {"s": service},
    ).result_rows
    assert hist == [("approval.latency", 1, 12.5, 12.5, 12.5, True)]
    gauge = s.query(
        "SELECT MetricName, Value, Attributes['queue'] FROM otel_metrics_gauge WHERE ServiceName = {s:String}",
        {"s": service},
    ).result_rows
    assert gauge == [("queue.backlog", 1204.0, "wf.approvals")]


def test_self_metrics_count_accepted_spans(live_server: LiveServer) -> None:
    def accepted() -> float:
        text = httpx.get(f"{live_server.api}/metrics").text
        for line in text.splitlines():
            if line.startswith('triage_receiver_accepted_spans_total{transport="http"}'):
                return float(line.split()[-1])
        return 0.0

    before = accepted()
    provider = TracerProvider(resource=Resource.create({"service.name": "counted"}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(live_server, "http", "traces")))
    tracer = provider.get_tracer("t")
    for i in range(7):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    provider.shutdown()
    live_server.flush()
    deadline = time.time() + 5
    while accepted() - before < 7 and time.time() < deadline:
        time.sleep(0.1)
    assert accepted() - before == 7
    text = httpx.get(f"{live_server.api}/metrics").text
    assert 'triage_store_written_rows_total{table="otel_traces"}' in text
