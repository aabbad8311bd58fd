"""Honest retention: nothing is accepted and then dropped in silence. An item older than the raw
retention, or a span without a start time, is refused by name in `partial_success`; a log record
without any time is stamped with the time it was received."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from collector.otlp import REQUEST_TYPES, RESPONSE_TYPES
from tests.conftest import LiveServer

DAY = 86_400 * 10**9
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _post(server: LiveServer, signal: str, body: bytes) -> bytes:
    response = httpx.post(f"{server.otlp_http}/v1/{signal}", content=body, headers=PROTOBUF)
    assert response.status_code == 200, response.text
    return response.content


def test_old_and_timeless_spans_are_refused_by_name(live_server: LiveServer) -> None:
    req: Any = REQUEST_TYPES["traces"]()
    spans = req.resource_spans.add().scope_spans.add().spans
    now = time.time_ns()
    traces = {"old": os.urandom(16), "unset": os.urandom(16), "fresh": os.urandom(16)}
    for name, start in (("old", 1544712660300000000), ("unset", 0), ("fresh", now)):
        span = spans.add()
        span.trace_id, span.span_id, span.name = traces[name], os.urandom(8), name
        span.start_time_unix_nano, span.end_time_unix_nano = start, max(start, now)
    answer: Any = RESPONSE_TYPES["traces"].FromString(_post(live_server, "traces", req.SerializeToString()))
    assert answer.partial_success.rejected_spans == 2
    message = answer.partial_success.error_message
    assert "span starts 2018-12-13T14:51:00Z is older than the raw retention (7d)" in message
    assert "start_time_unix_nano is 0 (not set)" in message
    live_server.flush()
    api = f"{live_server.api}/api/v1/traces"
    assert [s["name"] for s in httpx.get(f"{api}/{traces['fresh'].hex()}").json()["spans"]] == ["fresh"]
    gone = httpx.get(f"{api}/{traces['old'].hex()}")
    assert gone.status_code == 404 and "refused at ingest" in gone.text
    metrics = httpx.get(f"{live_server.api}/metrics").text
    assert 'triage_receiver_refused_spans_total{reason="invalid",transport="http"}' in metrics


def test_old_log_records_are_refused_and_timeless_ones_stamped(live_server: LiveServer) -> None:
    req: Any = REQUEST_TYPES["logs"]()
    records = req.resource_logs.add().scope_logs.add().log_records
    marker = os.urandom(6).hex()
    for body, at in (("last month", time.time_ns() - 30 * DAY), ("no time at all", 0), ("now", time.time_ns())):
        record = records.add()
        record.body.string_value = f"{marker} {body}"
        record.time_unix_nano = at
    answer: Any = RESPONSE_TYPES["logs"].FromString(_post(live_server, "logs", req.SerializeToString()))
    assert answer.partial_success.rejected_log_records == 1
    assert "is older than the raw retention (7d)" in answer.partial_success.error_message
    live_server.flush()
    rows = live_server.store.query(
        "SELECT Body, dateDiff('second', Timestamp, now64(9)) FROM otel_logs WHERE startsWith(Body, {m:String})",
        {"m": marker},
    ).result_rows
    assert sorted(r[0] for r in rows) == [f"{marker} no time at all", f"{marker} now"]
    assert all(0 <= r[1] < 600 for r in rows), "the timeless record carries the time it was received"


def test_old_metric_points_are_refused(live_server: LiveServer) -> None:
    req: Any = REQUEST_TYPES["metrics"]()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = f"retention_probe_{os.urandom(4).hex()}"
    for at, value in ((time.time_ns() - 30 * DAY, 1.0), (time.time_ns(), 2.0)):
        point = metric.gauge.data_points.add()
        point.time_unix_nano, point.as_double = at, value
    answer: Any = RESPONSE_TYPES["metrics"].FromString(_post(live_server, "metrics", req.SerializeToString()))
    assert answer.partial_success.rejected_data_points == 1
    assert "1 data points older than the raw retention (7d)" in answer.partial_success.error_message
    live_server.flush()
    stored = live_server.store.query(
        "SELECT Value FROM otel_metrics_gauge WHERE MetricName = {n:String}", {"n": metric.name}
    ).result_rows
    assert stored == [(2.0,)]
