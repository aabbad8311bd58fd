"""The native trace path: OTLP requests through ClickHouse's Protobuf format into otel_traces (chDB)."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from collector import flatten, native
from triage.store import Store

# otel_traces drops rows past the raw retention (TTL) at insert time: keep span times recent.
NOW = time.time_ns() - 60_000_000_000

ROW_SQL = """
SELECT
    toUnixTimestamp64Nano(Timestamp) AS ts, TraceId, SpanId, ParentSpanId, TraceState, SpanName,
    SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration,
    StatusCode, StatusMessage,
    arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`) AS event_ts, `Events.Name` AS event_names,
    `Events.Attributes` AS event_attrs, `Links.TraceId` AS link_trace_ids, `Links.SpanId` AS link_span_ids,
    `Links.TraceState` AS link_states, `Links.Attributes` AS link_attrs
FROM otel_traces
"""


def _store(chdb_path: Path, prefix: str) -> Store:
    # One chDB data path per process (conftest's chdb_path); each store gets its own database.
    store = Store(f"chdb://{chdb_path}?database={prefix}_{uuid.uuid4().hex[:10]}")
    store.migrate()
    return store


@pytest.fixture
def nstore(chdb_path: Path) -> Iterator[Store]:
    store = _store(chdb_path, "native")
    yield store
    store.command(f"DROP DATABASE IF EXISTS `{store.target.database}`")


def rows(store: Store, where: str = "1") -> dict[str, dict[str, Any]]:
    """otel_traces rows keyed by SpanId."""
    result = store.query(f"{ROW_SQL} WHERE {where}")
    out = {}
    for values in result.result_rows:
        row = dict(zip(result.column_names, values, strict=True))
        out[row["SpanId"]] = row
    return out


def kv(attrs: Any, key: str, value: Any) -> None:
    """Append an attribute; the Python type picks the AnyValue member."""
    item = attrs.add()
    item.key = key
    if isinstance(value, bool):
        item.value.bool_value = value
    elif isinstance(value, int):
        item.value.int_value = value
    elif isinstance(value, float):
        item.value.double_value = value
    elif isinstance(value, bytes):
        item.value.bytes_value = value
    else:
        item.value.string_value = value


def add_span(scope_spans: Any, span_id: bytes, **fields: Any) -> trace_pb2.Span:
    span = scope_spans.spans.add()
    span.trace_id = fields.pop("trace_id", b"\x11" * 16)
    span.span_id = span_id
    span.name = fields.pop("name", "op")
    span.start_time_unix_nano = fields.pop("start", NOW)
    span.end_time_unix_nano = fields.pop("end", NOW + 1000)
    for key, value in fields.pop("attributes", {}).items():
        kv(span.attributes, key, value)
    for name, value in fields.items():
        setattr(span, name, value)
    return span


def request(service: str | None = "svc", **resource_attrs: Any) -> tuple[ExportTraceServiceRequest, Any]:
    """A request with one resource_spans and one scope_spans; returns (request, scope_spans)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    if service is not None:
        kv(rs.resource.attributes, "service.name", service)
    for key, value in resource_attrs.items():
        kv(rs.resource.attributes, key, value)
    ss = rs.scope_spans.add()
    ss.scope.name = "io.triage.test"
    ss.scope.version = "1.2.3"
    return req, ss


# ---- the schema and the framing ------------------------------------------------------------------

_FIELD = re.compile(r"^\s*(repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", re.M)
_MESSAGE = re.compile(r"^message (\w+) \{(.*?)^\}", re.M | re.S)
OTLP: dict[str, Any] = {
    "ExportTraceServiceRequest": ExportTraceServiceRequest,
    "ResourceSpans": trace_pb2.ResourceSpans,
    "ScopeSpans": trace_pb2.ScopeSpans,
    "Span": trace_pb2.Span,
    "Event": trace_pb2.Span.Event,
    "Link": trace_pb2.Span.Link,
    "Status": trace_pb2.Status,
    "Resource": resource_pb2.Resource,
    "InstrumentationScope": common_pb2.InstrumentationScope,
    "KeyValue": common_pb2.KeyValue,
    "AnyValue": common_pb2.AnyValue,
}
# Projection type -> the OTLP descriptor types with the same wire encoding.
WIRE_COMPATIBLE = {
    "string": {9},
    "bytes": {12},
    "bool": {8},
    "int64": {3},
    "double": {1},
    "fixed64": {6},
    "int32": {5, 14},  # OTLP's enums (SpanKind, StatusCode) are read as their numbers
}


def test_projection_keeps_otlp_field_numbers_and_wire_types() -> None:
    text = native.SCHEMA_FILE.read_text()
    messages = dict(_MESSAGE.findall(text))
    assert set(messages) == set(OTLP)
    for name, body in messages.items():
        descriptor = OTLP[name].DESCRIPTOR
        fields = _FIELD.findall(body)
        assert fields, name
        for repeated, type_name, field_name, number in fields:
            if (name, field_name) == ("ExportTraceServiceRequest", "triage_request"):
                # Ours, appended by collector/native.with_request: a number OTLP does not use, a varint.
                assert int(number) not in descriptor.fields_by_number and type_name == "uint64" and not repeated
                continue
            otlp_field = descriptor.fields_by_name[field_name]
            assert otlp_field.number == int(number), f"{name}.{field_name}"
            assert bool(repeated) == otlp_field.is_repeated, f"{name}.{field_name}"
            if type_name in WIRE_COMPATIBLE:
                assert otlp_field.type in WIRE_COMPATIBLE[type_name], f"{name}.{field_name}"
            else:
                assert otlp_field.message_type is not None, f"{name}.{field_name}"
                assert otlp_field.message_type.name == OTLP[type_name].DESCRIPTOR.name


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def test_encode_requests_length_delimits_each_payload() -> None:
    payloads = [b"", b"a", b"x" * 127, b"y" * 128, b"z" * 300_000]
    data = native.encode_requests(payloads)
    decoded, pos = [], 0
    while pos < len(data):
        size, pos = _read_varint(data, pos)
        decoded.append(data[pos : pos + size])
        pos += size
    assert decoded == payloads
    assert data[:2] == b"\x00\x01"
    assert native.encode_requests([b"y" * 128])[:2] == b"\x80\x01"
    assert native.encode_requests([]) == b""


def test_schema_setting_absolute_for_chdb_relative_for_a_server(nstore: Store, tmp_path: Path) -> None:
    path, message = native.schema_setting(nstore).rsplit(":", 1)
    assert message == "ExportTraceServiceRequest"
    assert Path(path).is_absolute() and Path(path).read_text() == native.SCHEMA_FILE.read_text()
    server = Store("http://default:pw@clickhouse.invalid:8123/triage")
    assert native.schema_setting(server) == "otlp_traces_projection.proto:ExportTraceServiceRequest"
    copied = native.install_schema(tmp_path / "format_schemas")
    assert copied.read_bytes() == native.SCHEMA_FILE.read_bytes()


# ---- row semantics ----------------------------------------------------------------------------------


def test_every_column_of_a_full_span(nstore: Store) -> None:
    req, ss = request("checkout", **{"host.name": "node-1", "deployment.environment": "prod"})
    span = add_span(
        ss,
        bytes.fromhex("00aa0b0c0d0e0fff"),
        trace_id=bytes.fromhex("0123456789abcdef0123456789ABCDEF"),
        parent_span_id=bytes.fromhex("1020304050607080"),
        trace_state="vendor=a,other=b",
        name="POST /orders",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start=NOW + 123_456_789,
        end=NOW + 123_456_789 + 987_654_321,
        attributes={"http.method": "POST", "http.status_code": 201, "retry": True, "ratio": 0.25},
    )
    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    span.status.message = "upstream timeout"
    event = span.events.add()
    event.time_unix_nano = NOW + 5
    event.name = "exception"
    kv(event.attributes, "exception.type", "TimeoutError")
    kv(event.attributes, "attempt", 3)
    event2 = span.events.add()
    event2.time_unix_nano = NOW + 6
    event2.name = "retry"
    link = span.links.add()
    link.trace_id = bytes.fromhex("ffeeddccbbaa99887766554433221100")
    link.span_id = bytes.fromhex("0102030405060708")
    link.trace_state = "k=v"
    kv(link.attributes, "link.kind", "follows")
    kv(link.attributes, "weight", 1.5)

    native.insert_trace_requests(nstore, [req.SerializeToString()])
    row = rows(nstore)["00aa0b0c0d0e0fff"]
    assert row == {
        "ts": NOW + 123_456_789,
        "TraceId": "0123456789abcdef0123456789abcdef",
        "SpanId": "00aa0b0c0d0e0fff",
        "ParentSpanId": "1020304050607080",
        "TraceState": "vendor=a,other=b",
        "SpanName": "POST /orders",
        "SpanKind": "Server",
        "ServiceName": "checkout",
        "ResourceAttributes": {
            "service.name": "checkout",
            "host.name": "node-1",
            "deployment.environment": "prod",
        },
        "ScopeName": "io.triage.test",
        "ScopeVersion": "1.2.3",
        "SpanAttributes": {
            "http.method": "POST",
            "http.status_code": "201",
            "retry": "true",
            "ratio": "0.25",
        },
        "Duration": 987_654_321,
        "StatusCode": "Error",
        "StatusMessage": "upstream timeout",
        "event_ts": [NOW + 5, NOW + 6],
        "event_names": ["exception", "retry"],
        "event_attrs": [{"exception.type": "TimeoutError", "attempt": "3"}, {}],
        "link_trace_ids": ["ffeeddccbbaa99887766554433221100"],
        "link_span_ids": ["0102030405060708"],
        "link_states": ["k=v"],
        "link_attrs": [{"link.kind": "follows", "weight": "1.5"}],
    }


def test_zero_false_empty_and_other_scalar_values_render_exactly(nstore: Store) -> None:
    values: dict[str, Any] = {
        "empty": "",
        "zero": 0,
        "false": False,
        "true": True,
        "double_zero": 0.0,
        "neg": -42,
        "int_min": -(2**63),
        "int_max": 2**63 - 1,
        "five": 5.0,
        "double": 637.704,
        "neg_double": -2.5,
        "tiny": 1e-7,
        "bytes": b"\x00\xff\x10binary",
        "empty_bytes": b"",
        "unicode": "Zürich – 東京 🚑",
        "zero_text": "0",
        "false_text": "false",
    }
    expected = {
        "empty": "",
        "zero": "0",
        "false": "false",
        "true": "true",
        "double_zero": "0",
        "neg": "-42",
        "int_min": "-9223372036854775808",
        "int_max": "9223372036854775807",
        "five": "5",
        "double": "637.704",
        "neg_double": "-2.5",
        "tiny": "1e-7",
        "bytes": base64.b64encode(b"\x00\xff\x10binary").decode(),
        "empty_bytes": "",
        "unicode": "Zürich – 東京 🚑",
        "zero_text": "0",
        "false_text": "false",
    }
    req, ss = request("svc", **values)
    span = add_span(ss, b"\x00" * 7 + b"\x01", attributes=values)
    event = span.events.add()
    event.time_unix_nano = NOW
    for key, value in values.items():
        kv(event.attributes, key, value)
    link = span.links.add()
    for key, value in values.items():
        kv(link.attributes, key, value)

    native.insert_trace_requests(nstore, [req.SerializeToString()])
    row = rows(nstore)["0000000000000001"]
    assert row["SpanAttributes"] == expected
    assert row["ResourceAttributes"] == {"service.name": "svc", **expected}
    assert row["event_attrs"] == [expected]
    assert row["link_attrs"] == [expected]
    # The Python path renders the same, except doubles in exponent form ('1e-07' there).
    python = flatten.attributes(span.attributes)
    assert {k: v for k, v in python.items() if k != "tiny"} == {k: v for k, v in expected.items() if k != "tiny"}


def test_value_absent_or_nested_renders_empty_and_unknown_fields_are_skipped(nstore: Store) -> None:
    req, ss = request("svc")
    req.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    req.resource_spans[0].resource.dropped_attributes_count = 3
    ss.schema_url = "https://example.com/scope"
    kv(ss.scope.attributes, "scope.attr", "ignored")
    span = add_span(ss, b"\x02" * 8, attributes={"before": 1})
    span.flags = 0x301
    span.dropped_attributes_count = 7
    span.dropped_events_count = 2
    span.dropped_links_count = 1
    no_value = span.attributes.add()
    no_value.key = "no.value"
    arr = span.attributes.add()
    arr.key = "array"
    arr.value.array_value.values.add().string_value = "x"
    kvl = span.attributes.add()
    kvl.key = "kvlist"
    kv(kvl.value.kvlist_value.values, "inner", 5)
    kv(span.attributes, "after", "still here")
    link = span.links.add()
    link.flags = 1
    link.dropped_attributes_count = 4

    native.insert_trace_requests(nstore, [req.SerializeToString()])
    row = rows(nstore)["0202020202020202"]
    assert row["SpanAttributes"] == {
        "before": "1",
        "no.value": "",
        "array": "",
        "kvlist": "",
        "after": "still here",
    }
    assert row["link_trace_ids"] == [""] and row["link_span_ids"] == [""] and row["link_attrs"] == [{}]
    assert row["ServiceName"] == "svc"


def test_defaults_missing_service_empty_ids_and_empty_arrays(nstore: Store) -> None:
    req, ss = request(None, **{"service.namespace": "billing", "service.version": 2})
    add_span(ss, b"", trace_id=b"", name="")  # every id empty, nothing else set
    native.insert_trace_requests(nstore, [req.SerializeToString()])
    [row] = rows(nstore).values()
    assert row == {
        "ts": NOW,
        "TraceId": "",
        "SpanId": "",
        "ParentSpanId": "",
        "TraceState": "",
        "SpanName": "",
        "SpanKind": "Unspecified",
        "ServiceName": "",
        "ResourceAttributes": {"service.namespace": "billing", "service.version": "2"},
        "ScopeName": "io.triage.test",
        "ScopeVersion": "1.2.3",
        "SpanAttributes": {},
        "Duration": 1000,
        "StatusCode": "Unset",
        "StatusMessage": "",
        "event_ts": [],
        "event_names": [],
        "event_attrs": [],
        "link_trace_ids": [],
        "link_span_ids": [],
        "link_states": [],
        "link_attrs": [],
    }


def test_non_string_service_name_uses_its_string_form(nstore: Store) -> None:
    req, ss = request(None, **{"service.name": 7})
    add_span(ss, b"\x03" * 8)
    native.insert_trace_requests(nstore, [req.SerializeToString()])
    assert rows(nstore)["0303030303030303"]["ServiceName"] == "7"


def test_span_kinds_status_codes_and_durations(nstore: Store) -> None:
    req, ss = request("svc")
    kinds = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer", "Unspecified"]
    for i in range(len(kinds)):
        kind = i if i < 6 else 9  # an enum value from a newer OTLP: stored as Unspecified
        span = add_span(ss, bytes([0x10 + i]) * 8, kind=kind, start=NOW + i, end=NOW + i + 10 * i)
        status: Any = span.status
        status.code = [0, 1, 2, 0, 1, 2, 5][i]  # 5: unknown, stored as Unset
    add_span(ss, b"\x20" * 8, start=NOW + 500, end=NOW + 100)  # end before start
    add_span(ss, b"\x21" * 8, start=NOW + 500, end=0)  # never ended
    native.insert_trace_requests(nstore, [req.SerializeToString()])
    got = rows(nstore)
    for i, name in enumerate(kinds):
        row = got[f"{0x10 + i:02x}" * 8]
        assert row["SpanKind"] == name
        assert row["StatusCode"] == ["Unset", "Ok", "Error", "Unset", "Ok", "Error", "Unset"][i]
        assert row["Duration"] == 10 * i and row["ts"] == NOW + i
    assert got["20" * 8]["Duration"] == 0
    assert got["21" * 8]["Duration"] == 0


def test_many_resources_scopes_and_requests_all_land(nstore: Store) -> None:
    payloads = []
    expected = {}
    for r in range(3):
        req = ExportTraceServiceRequest()
        for s in range(2):
            rs = req.resource_spans.add()
            service = f"svc-{r}-{s}"
            kv(rs.resource.attributes, "service.name", service)
            kv(rs.resource.attributes, "resource.index", s)
            for c in range(3):
                ss = rs.scope_spans.add()
                ss.scope.name = f"scope-{c}"
                ss.scope.version = f"v{c}"
                for n in range(c):  # scope 0 has no spans at all
                    sid = bytes([r, s, c, n, 0, 0, 0, 1])
                    add_span(ss, sid, name=f"span-{n}", attributes={"n": n})
                    expected[sid.hex()] = (
                        service,
                        {"service.name": service, "resource.index": str(s)},
                        f"scope-{c}",
                        f"v{c}",
                        f"span-{n}",
                        {"n": str(n)},
                    )
        rs_empty = req.resource_spans.add()  # a resource with no scopes
        kv(rs_empty.resource.attributes, "service.name", "nobody")
        payloads.append(req.SerializeToString())
    payloads.append(ExportTraceServiceRequest().SerializeToString())  # an empty request
    native.insert_trace_requests(nstore, payloads)
    got = rows(nstore)
    assert len(got) == len(expected) == 3 * 2 * (0 + 1 + 2)
    for span_id, (service, resource, scope, version, name, attrs) in expected.items():
        row = got[span_id]
        assert (
            row["ServiceName"],
            row["ResourceAttributes"],
            row["ScopeName"],
            row["ScopeVersion"],
            row["SpanName"],
            row["SpanAttributes"],
        ) == (service, resource, scope, version, name, attrs)


def test_insert_of_nothing_is_a_no_op(nstore: Store) -> None:
    native.insert_trace_requests(nstore, [])
    assert int(nstore.command("SELECT count() FROM otel_traces")) == 0


def test_same_rows_as_the_python_path(nstore: Store, chdb_path: Path) -> None:
    """The native path and collector.flatten agree on every column for a varied request."""
    payloads = []
    for r in range(2):
        req, ss = request(f"svc-{r}", **{"host.name": "h", "pid": 1234 + r})
        for i in range(20):
            span = add_span(
                ss,
                bytes([r, i]) * 4,
                trace_id=bytes([i]) * 16,
                parent_span_id=bytes([i, r]) * 4 if i % 3 else b"",
                name=f"op-{i % 4}",
                kind=i % 6,
                start=NOW + i * 1000,
                end=NOW + i * 1000 + i * 17,
                attributes={"s": f"v{i}", "i": i - 10, "b": i % 2 == 0, "d": i / 4, "y": bytes([i]), "e": ""},
            )
            status: Any = span.status
            status.code = i % 3
            status.message = "m" * (i % 2)
            if i % 4 == 0:
                event = span.events.add()
                event.time_unix_nano = NOW + i
                event.name = f"ev{i}"
                kv(event.attributes, "k", i)
            if i % 5 == 0:
                link = span.links.add()
                link.trace_id = bytes([0xAB]) * 16
                link.span_id = bytes([0xCD]) * 8
                link.trace_state = "x=y"
                kv(link.attributes, "flag", False)
        payloads.append(req.SerializeToString())

    python_store = _store(chdb_path, "python")
    try:
        cols = flatten.trace_columns(ExportTraceServiceRequest.FromString(p) for p in payloads)
        python_store.insert("otel_traces", [cols[n] for n in cols], list(cols), column_oriented=True)
        native.insert_trace_requests(nstore, payloads)
        from_native, from_python = rows(nstore), rows(python_store)
        assert len(from_native) == 40
        assert from_native == from_python
    finally:
        python_store.command(f"DROP DATABASE IF EXISTS `{python_store.target.database}`")


def test_a_request_that_is_not_protobuf_fails_the_insert(nstore: Store) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the driver's exception type varies by backend
        native.insert_trace_requests(nstore, [b"\xff\xff\xff\xff"])
    assert int(nstore.command("SELECT count() FROM otel_traces")) == 0
