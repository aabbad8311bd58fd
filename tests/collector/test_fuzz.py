"""Fuzzing the decoders a hostile client reaches (bounded in examples and time): OTLP protobuf and
JSON bodies, raw integration-engine lines through every log profile, and HL7 through the PHI
redactor. The only failure allowed is DecodeError, which the receivers answer with a 400; anything
else would be a 500."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import flatten
from collector.logs import parse_lines
from collector.otlp import REQUEST_TYPES, parse
from collector.redaction import Redactor
from collector.validate import validate
from triage.errors import DecodeError
from triage.settings import LogSource

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGNALS = ("traces", "logs", "metrics")
COLUMNS = {"traces": flatten.trace_columns, "logs": flatten.log_columns, "metrics": flatten.metric_columns}


def _sample(signal: str) -> bytes:
    """A valid request with one item, to mutate."""
    req: Any = REQUEST_TYPES[signal]()
    if signal == "traces":
        span = req.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "POST /requisitions"
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_100_000_000
        kv = span.attributes.add()
        kv.key, kv.value.string_value = "erp.po_number", "4500012345"
    elif signal == "logs":
        record = req.resource_logs.add().scope_logs.add().log_records.add()
        record.body.string_value, record.time_unix_nano = "PO 4500012345 approved", 1_700_000_000_000_000_000
    else:
        metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
        metric.name = "queue.depth"
        point = metric.histogram.data_points.add()
        point.bucket_counts.extend([1, 2, 3])
        point.explicit_bounds.extend([0.5, 1.0])
    return bytes(req.SerializeToString())


def _survives(signal: str, body: bytes, encoding: str) -> None:
    try:
        message = parse(signal, body, encoding)  # type: ignore[arg-type]
    except DecodeError:
        return
    decoded = validate(signal, message, retention_days=7)  # type: ignore[arg-type]
    COLUMNS[signal]([decoded.message])


@FUZZ
@given(st.sampled_from(SIGNALS), st.binary(max_size=2048))
def test_random_protobuf_bodies(signal: str, body: bytes) -> None:
    _survives(signal, body, "protobuf")


@FUZZ
@given(st.sampled_from(SIGNALS), st.data())
def test_mutated_valid_protobuf_bodies(signal: str, data: st.DataObject) -> None:
    body = bytearray(_sample(signal))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    _survives(signal, bytes(body[:cut]), "protobuf")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
_OTLP_KEYS = [
    "resourceSpans",
    "resourceLogs",
    "resourceMetrics",
    "scopeSpans",
    "spans",
    "traceId",
    "spanId",
    "startTimeUnixNano",
    "attributes",
    "value",
    "stringValue",
    "intValue",
    "arrayValue",
    "kvlistValue",
    "logRecords",
    "body",
    "timeUnixNano",
    "metrics",
    "gauge",
    "dataPoints",
    "asDouble",
    "name",
]


@FUZZ
@given(st.sampled_from(SIGNALS), _JSON)
def test_random_json_bodies(signal: str, doc: Any) -> None:
    _survives(signal, json.dumps(doc).encode(), "json")


@FUZZ
@given(st.sampled_from(SIGNALS), st.data())
def test_json_shaped_like_otlp(signal: str, data: st.DataObject) -> None:
    shaped = st.recursive(
        _JSON,
        lambda inner: st.dictionaries(st.sampled_from(_OTLP_KEYS), inner, max_size=5) | st.lists(inner, max_size=3),
        max_leaves=40,
    )
    _survives(signal, json.dumps(data.draw(shaped)).encode(), "json")


_PROFILES = [
    LogSource(name="json", format="json"),
    LogSource(name="syslog", format="syslog"),
    LogSource(name="mirth", format="mirth"),
    LogSource(name="mule", format="mule"),
    LogSource(name="log4j", format="log4j"),
    LogSource(name="regex", format="regex", pattern=r"(?P<timestamp>\S+) (?P<level>\w+) (?P<message>.*)"),
]
_LINE = st.text(max_size=200) | st.sampled_from(
    [
        "ERROR 2026-11-24 10:15:02,123 [ADT-Inbound] channel-writer: lookup failed",
        '{"@timestamp":"2026-11-24T10:15:02Z","log.level":"warn","message":{"po":"4500012345"}}',
        '<11>1 2026-11-24T10:15:02.123+01:00 erp-gw01 boomi 4711 PO_FAIL [meta x="1"] failed',
        "\tat com.mirth.connect.Foo(Foo.java:12)",
        "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ]
)


@FUZZ
@given(st.sampled_from(_PROFILES), st.lists(_LINE, max_size=12))
def test_every_log_profile_takes_any_line(source: LogSource, lines: list[str]) -> None:
    request = parse_lines(source, lines)
    decoded = validate("logs", request, retention_days=7)
    flatten.log_columns([decoded.message])


_REDACTOR = Redactor(b"k" * 32, allow_keys=["erp.po_number"])


def _hl7_samples() -> list[str]:
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hl7"
    return [p.read_text(errors="replace") for p in sorted(folder.glob("*.hl7"))] or ["MSH|^~\\&|A|B\rPID|1||123^^^MRN"]


@FUZZ
@given(st.data())
def test_hl7_and_free_text_through_the_redactor(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(_hl7_samples()))
    chars = list(base)
    for _ in range(data.draw(st.integers(0, 10))):
        at = data.draw(st.integers(0, max(0, len(chars) - 1)))
        chars.insert(at, data.draw(st.sampled_from(["|", "^", "~", "\\", "&", "\r", "\n", "PID|", "é", "\x00"])))
    text = "".join(chars) + data.draw(st.text(max_size=80))
    redacted = _REDACTOR.redact_text(text)
    assert isinstance(redacted, str)
    req: Any = REQUEST_TYPES["logs"]()
    req.resource_logs.add().scope_logs.add().log_records.add().body.string_value = text
    _REDACTOR.redact_message(req)


def test_span_fast_path_agrees_with_the_full_check() -> None:
    """The receiver's one-expression check passes only spans the full check (which names the problem)
    also passes, and validation's verdict is the full check's: every combination of good and bad
    ids, start times, links and retention, exhaustively (about 16k spans)."""
    from collector.validate import Window, _span_fine, _span_problem

    ids = [b"", bytes(8), bytes(16), b"\x01" * 7, b"\x01" * 8, b"\x01" * 9, b"\x02" * 16, b"\x02" * 17]
    starts = [0, 1, 1_700_000_000_000_000_000, time.time_ns()]
    links = [(), ((b"\x02" * 16, b"\x01" * 8),), ((bytes(16), b"\x01" * 8),), ((b"\x02" * 16, b"\x01" * 9),)]
    fine = 0
    for trace, own, parent, start, linked, days in itertools.product(ids, ids, ids, starts, links, (None, 7)):
        req: Any = REQUEST_TYPES["traces"]()
        span = req.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.parent_span_id, span.start_time_unix_nano = trace, own, parent, start
        for link_trace, link_span in linked:
            link = span.links.add()
            link.trace_id, link.span_id = link_trace, link_span
        window = Window.of(days) if days else None
        problem = _span_problem(span, window)
        if _span_fine(span, window.oldest_ns if window else 0):
            fine += 1
            assert problem == "", (trace, own, parent, start, linked, days)
        decoded = validate("traces", req, retention_days=days)
        assert (decoded.accepted, decoded.rejected) == ((1, 0) if problem == "" else (0, 1))
        assert (problem in decoded.error) if problem else decoded.error == ""
    assert fine > 0  # the fast path is taken at all
