"""The OTLP authors' JSON examples (../shared/data/otlp) are accepted and stored exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, server_settings

T0 = 1544712660300000000  # the samples' timestamps (2018): a 68-year retention keeps them


@pytest.fixture
def sample_server(chdb_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(server_settings(chdb_path, retention={"raw_days": 25000})).start()
    yield server
    server.stop()


def _post(server: LiveServer, signal: str, path: Path) -> dict:
    response = httpx.post(
        f"{server.otlp_http}/v1/{signal}",
        content=path.read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    server.flush()
    return response.json()


def test_trace_sample_stored_exactly(sample_server: LiveServer, shared_data: Path) -> None:
    assert _post(sample_server, "traces", shared_data / "otlp" / "trace.json") == {}
    rows = sample_server.store.query(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ResourceAttributes, "
        "ScopeName, ScopeVersion, SpanAttributes, toUnixTimestamp64Nano(Timestamp), Duration, StatusCode, "
        "Events.Name, Links.TraceId FROM otel_traces"
    ).result_rows
    assert rows == [
        (
            "5b8efff798038103d269b633813fc60c",
            "eee19b7ec3c1b174",
            "eee19b7ec3c1b173",
            "I'm a server span",
            "Server",
            "my.service",
            {"service.name": "my.service"},
            "my.library",
            "1.0.0",
            {"my.span.attr": "some value"},
            1544712660000000000,
            1_000_000_000,
            "Unset",
            [],
            [],
        )
    ]
    api = httpx.get(f"{sample_server.api}/api/v1/traces/5B8EFFF798038103D269B633813FC60C").json()
    assert [s["span_id"] for s in api["spans"]] == ["eee19b7ec3c1b174"]


def test_logs_sample_stored_exactly(sample_server: LiveServer, shared_data: Path) -> None:
    _post(sample_server, "logs", shared_data / "otlp" / "logs.json")
    rows = sample_server.store.query(
        "SELECT toUnixTimestamp64Nano(Timestamp), toUnixTimestamp64Nano(ObservedTimestamp), TraceId, SpanId, "
        "SeverityText, SeverityNumber, ServiceName, Body, ScopeName, ScopeVersion, ScopeAttributes, "
        "LogAttributes, ResourceAttributes FROM otel_logs"
    ).result_rows
    assert rows == [
        (
            T0,
            T0,
            "5b8efff798038103d269b633813fc60c",
            "eee19b7ec3c1b174",
            "Information",
            10,
            "my.service",
            "Example log record",
            "my.library",
            "1.0.0",
            {"my.scope.attribute": "some scope attribute"},
            {
                "string.attribute": "some string",
                "boolean.attribute": "true",
                "int.attribute": "10",
                "double.attribute": "637.704",
                "array.attribute": '["many","values"]',
                "map.attribute": '{"some.map.key":"some value"}',
            },
            {"service.name": "my.service"},
        )
    ]


def test_events_sample_keeps_event_name_and_structured_body(sample_server: LiveServer, shared_data: Path) -> None:
    _post(sample_server, "logs", shared_data / "otlp" / "events.json")
    rows = sample_server.store.query(
        "SELECT EventName, SeverityNumber, SeverityText, Body, LogAttributes, TraceId FROM otel_logs"
    ).result_rows
    assert len(rows) == 1
    name, number, text, body, attrs, trace_id = rows[0]
    assert (name, number, text, trace_id) == ("browser.page_view", 9, "test severity text", "")
    assert json.loads(body) == {
        "type": 0,
        "url": "https://www.guidgenerator.com/online-guid-generator.aspx",
        "referrer": "https://wwww.google.com",
        "title": "Free Online GUID Generator",
    }
    assert attrs == {"event.attribute": "some event attribute"}


def test_metrics_sample_stored_exactly(sample_server: LiveServer, shared_data: Path) -> None:
    _post(sample_server, "metrics", shared_data / "otlp" / "metrics.json")
    q = sample_server.store.query
    common = "MetricName, MetricDescription, MetricUnit, Attributes, toUnixTimestamp64Nano(TimeUnix)"
    assert q(
        f"SELECT {common}, Value, AggregationTemporality, IsMonotonic, ScopeAttributes FROM otel_metrics_sum"
    ).result_rows == [
        (
            "my.counter",
            "I am a Counter",
            "1",
            {"my.counter.attr": "some value"},
            T0,
            5.0,
            1,
            True,
            {"my.scope.attribute": "some scope attribute"},
        )
    ]
    assert q(f"SELECT {common}, Value FROM otel_metrics_gauge").result_rows == [
        ("my.gauge", "I am a Gauge", "1", {"my.gauge.attr": "some value"}, T0, 10.0)
    ]
    assert q(
        f"SELECT {common}, Count, Sum, BucketCounts, ExplicitBounds, Min, Max FROM otel_metrics_histogram"
    ).result_rows == [
        (
            "my.histogram",
            "I am a Histogram",
            "1",
            {"my.histogram.attr": "some value"},
            T0,
            2,
            2.0,
            [1, 1],
            [1.0],
            0.0,
            2.0,
        )
    ]
    assert q(
        f"SELECT {common}, Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, Min, Max "
        "FROM otel_metrics_exponential_histogram"
    ).result_rows == [
        (
            "my.exponential.histogram",
            "I am an Exponential Histogram",
            "1",
            {"my.exponential.histogram.attr": "some value"},
            T0,
            3,
            10.0,
            0,
            1,
            1,
            [0, 2],
            0.0,
            5.0,
        )
    ]
