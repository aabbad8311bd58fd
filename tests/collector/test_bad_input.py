"""Bad OTLP input gets the status the OTLP spec names and a message that says why; valid items survive."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.conftest import LiveServer, server_settings

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def _request(n: int = 3, service: str = "erp", trace_id: bytes = TRACE_ID) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    spans = rs.scope_spans.add().spans
    now = time.time_ns()
    for i in range(n):
        span = spans.add()
        span.trace_id = trace_id
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = f"span-{i}"
        span.start_time_unix_nano = now + i
        span.end_time_unix_nano = now + 100 + i
    return req


def _post(
    server: LiveServer, body: bytes, content_type: str = "application/x-protobuf", **headers: str
) -> httpx.Response:
    return httpx.post(f"{server.otlp_http}/v1/traces", content=body, headers={"Content-Type": content_type, **headers})


def _status_message(response: httpx.Response) -> str:
    if response.headers["content-type"].startswith("application/json"):
        return str(response.json()["message"])
    return status_pb2.Status.FromString(response.content).message


def _span_names(server: LiveServer, service: str) -> list[str]:
    server.flush()
    rows = server.store.query(
        "SELECT SpanName FROM otel_traces WHERE ServiceName = {s:String} ORDER BY SpanName", {"s": service}
    ).result_rows
    return [r[0] for r in rows]


@pytest.fixture
def small_server(chdb_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(
        server_settings(chdb_path, ingest={"max_body_bytes": 64 * 1024, "max_decompressed_bytes": 256 * 1024})
    ).start()
    yield server
    server.stop()


def test_truncated_protobuf_is_400_and_server_keeps_serving(small_server: LiveServer) -> None:
    body = _request().SerializeToString()
    response = _post(small_server, body[: len(body) // 2])
    assert response.status_code == 400
    assert "not a valid protobuf ExportTraceServiceRequest" in _status_message(response)
    assert _post(small_server, _request(service="after").SerializeToString()).status_code == 200
    assert _span_names(small_server, "after") == ["span-0", "span-1", "span-2"]


def test_wrong_content_type_is_415(small_server: LiveServer) -> None:
    response = _post(small_server, b"hello", content_type="text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf or application/json" in _status_message(response)


def test_unknown_content_encoding_is_415(small_server: LiveServer) -> None:
    response = _post(small_server, _request().SerializeToString(), **{"Content-Encoding": "br"})
    assert response.status_code == 415
    assert "Content-Encoding" in _status_message(response)


def test_oversize_body_is_413(small_server: LiveServer) -> None:
    response = _post(small_server, _request(n=2000).SerializeToString())
    assert response.status_code == 413
    assert "65536-byte limit" in _status_message(response)


def test_gzip_bomb_is_413_without_inflating_it(small_server: LiveServer) -> None:
    bomb = gzip.compress(b"\x00" * (50 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    response = _post(small_server, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "expands past" in _status_message(response)


def test_corrupt_gzip_is_400(small_server: LiveServer) -> None:
    corrupt = gzip.compress(b"payload")[:10] + b"\xff" * 20
    response = _post(small_server, corrupt, **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "not valid gzip" in _status_message(response)
    truncated = gzip.compress(_request().SerializeToString())[:-12]
    response = _post(small_server, truncated, **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip body is truncated" in _status_message(response)


def test_gzip_body_is_accepted(small_server: LiveServer) -> None:
    body = gzip.compress(_request(service="gz").SerializeToString())
    assert _post(small_server, body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert _span_names(small_server, "gz") == ["span-0", "span-1", "span-2"]


def test_invalid_ids_are_partial_success_and_valid_spans_kept(small_server: LiveServer) -> None:
    req = _request(n=4, service="partial")
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].trace_id = b"\x01\x02"  # wrong length
    spans[2].span_id = b"\x00" * 8  # all zeros
    response = _post(small_server, req.SerializeToString())
    assert response.status_code == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    message = answer.partial_success.error_message
    assert "spans[1]: trace_id has 2 bytes, want 16" in message
    assert "spans[2]: span_id is all zeros" in message
    assert _span_names(small_server, "partial") == ["span-0", "span-3"]


def test_invalid_hex_id_in_json_is_partial_success(small_server: LiveServer) -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {"traceId": "NOT-HEX", "spanId": "EEE19B7EC3C1B174", "name": "bad"},
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "good",
                                "startTimeUnixNano": str(time.time_ns()),
                            },
                        ]
                    }
                ],
            }
        ]
    }
    response = _post(small_server, json.dumps(doc).encode(), content_type="application/json")
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert _span_names(small_server, "js") == ["good"]


def test_malformed_json_is_400(small_server: LiveServer) -> None:
    response = _post(small_server, b'{"resourceSpans": [', content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]
    response = _post(small_server, b'{"resourceSpans": 5}', content_type="application/json")
    assert response.status_code == 400
    assert "not a valid OTLP ExportTraceServiceRequest" in response.json()["message"]


def _nest(value: AnyValue, depth: int) -> None:
    node = value
    for _ in range(depth):
        node = node.array_value.values.add()
    node.string_value = "leaf"


def test_deeply_nested_values_are_refused_but_moderate_nesting_is_stored(small_server: LiveServer) -> None:
    deep = _request(n=1, service="deep")
    attr = deep.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    attr.key = "deep"
    _nest(attr.value, 200)
    response = _post(small_server, deep.SerializeToString())
    assert response.status_code == 400
    assert "nested too deeply" in _status_message(response)

    moderate = _request(n=1, service="nested")
    attr = moderate.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    attr.key = "nested"
    _nest(attr.value, 5)
    assert _post(small_server, moderate.SerializeToString()).status_code == 200
    small_server.flush()
    stored = small_server.store.query(
        "SELECT SpanAttributes['nested'] FROM otel_traces WHERE ServiceName = 'nested'"
    ).result_rows
    assert stored == [('[[[[["leaf"]]]]]',)]
    assert httpx.get(f"{small_server.api}/healthz").status_code == 200


def test_full_buffer_answers_429_with_retry_after_and_loses_nothing(chdb_path: Path) -> None:
    server = LiveServer(
        server_settings(chdb_path, ingest={"buffer_max_rows": 10, "batch_max_delay": "3s", "batch_max_rows": 100000})
    ).start()
    try:
        codes = [_post(server, _request(n=6, service="bp").SerializeToString()).status_code for _ in range(3)]
        assert codes[0] == 200
        assert 429 in codes[1:]
        refused = _post(server, _request(n=6, service="bp").SerializeToString())
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "write buffer full" in _status_message(refused)
        accepted = codes.count(200)
        assert len(_span_names(server, "bp")) == 6 * accepted
    finally:
        server.stop()


def test_grpc_garbage_is_invalid_argument(small_server: LiveServer) -> None:
    with grpc.insecure_channel(small_server.otlp_grpc) as channel:
        raw = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff\xff\xff\xff", timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf" in caught.value.details()
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        req = _request(n=2, service="grpc-partial")
        req.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01"
        answer = stub.Export(req, timeout=5)
        assert answer.partial_success.rejected_spans == 1
    assert _span_names(small_server, "grpc-partial") == ["span-1"]


def test_api_keys_guard_ingest_and_api(chdb_path: Path) -> None:
    server = LiveServer(server_settings(chdb_path, api_keys=["s3cret-long-enough"])).start()
    try:
        body = _request(service="auth").SerializeToString()
        assert _post(server, body).status_code == 401
        assert _post(server, body, Authorization="Bearer s3cret-long-enough").status_code == 200
        assert _post(server, body, **{"x-api-key": "s3cret-long-enough"}).status_code == 200
        trace = f"{server.api}/api/v1/traces/{TRACE_ID.hex()}"
        assert httpx.get(trace).status_code == 401
        server.flush()
        assert httpx.get(trace, headers={"Authorization": "Bearer s3cret-long-enough"}).status_code == 200
        assert httpx.get(f"{server.api}/healthz").status_code == 200
        # Dashboards: a browser cannot send a bearer key; it signs in once and keeps a session cookie.
        assert httpx.get(f"{server.api}/dashboards/").headers["location"] == "/dashboards/login"
        with httpx.Client(base_url=server.api) as browser:
            assert browser.get("/dashboards/", params={"key": "s3cret-long-enough"}).status_code == 303, (
                "no key in URLs"
            )
            signed_in = browser.post("/dashboards/login", data={"key": "s3cret-long-enough"})
            assert signed_in.status_code == 303 and "triage_session" in browser.cookies
            assert "s3cret" not in browser.cookies["triage_session"], "the cookie is a session, not the key"
            assert browser.get("/dashboards/").status_code == 200
        with grpc.insecure_channel(server.otlp_grpc) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Export(_request(), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stub.Export(_request(), timeout=5, metadata=(("authorization", "Bearer s3cret-long-enough"),))
    finally:
        server.stop()
