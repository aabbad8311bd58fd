"""Decode and validate OTLP export requests (protobuf or JSON, gzip) into opentelemetry-proto messages."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from triage.errors import DecodeError, PayloadTooLarge, UnsupportedMediaType

Signal = Literal["traces", "logs", "metrics"]
Encoding = Literal["protobuf", "json"]

REQUEST_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
RESPONSE_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
    "metrics": ExportMetricsServiceResponse,
}
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPES = ("application/json",)
_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


@dataclass
class Decoded:
    """A decoded request, what was rejected from it and why, and whether it holds nested values."""

    signal: Signal
    message: Any
    accepted: int
    rejected: int = 0
    error: str = ""
    nested_values: bool = False
    wal_position: int = 0  # where the request sits in the write-ahead log (0: not logged)
    rewritten: bool = False  # validation changed a kept item (so the body as received is stale)


def encoding_for(content_type: str | None) -> Encoding:
    """protobuf or json from a Content-Type header; 415 for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in PROTOBUF_TYPES:
        return "protobuf"
    if media in JSON_TYPES:
        return "json"
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}: OTLP/HTTP takes application/x-protobuf or application/json"
    )


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate without ever holding more than `limit` bytes (guards against gzip bombs)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {content_encoding!r}: send gzip, deflate or an uncompressed body"
        )
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"the body is not valid {encoding} data: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(
            f"the {encoding} body expands past the {limit}-byte limit; send smaller batches "
            "(ingest.max_decompressed_bytes raises the limit)"
        )
    if not inflater.eof:
        raise DecodeError(f"the {encoding} body is truncated: the compressed stream does not end")
    return out


def gzip_bytes(data: bytes) -> bytes:
    """gzip-compress; for clients and tests."""
    return gzip.compress(data)


def parse(signal: Signal, body: bytes, encoding: Encoding) -> Any:
    """The request message, or DecodeError naming what is wrong with the body."""
    message = REQUEST_TYPES[signal]()
    if encoding == "protobuf":
        try:
            message.ParseFromString(body)
        except ProtobufDecodeError as exc:
            raise DecodeError(
                f"the body is not a valid protobuf {message.DESCRIPTOR.name} ({exc}); it may be truncated, "
                "nested too deeply (over 100 levels), or sent with the wrong Content-Type"
            ) from exc
        return message
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise DecodeError(f"an OTLP/JSON {message.DESCRIPTOR.name} is a JSON object, not {type(document).__name__}")
    try:
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, message, ignore_unknown_fields=True, max_recursion_depth=64)
    except (json_format.ParseError, RecursionError) as exc:
        raise DecodeError(f"the JSON body is not a valid OTLP {message.DESCRIPTOR.name}: {exc}") from exc
    return message


def _hex_ids_to_base64(node: Any, depth: int = 0) -> None:
    """OTLP/JSON writes ids as hex (any case), protobuf's JSON mapping wants base64: convert in place.

    An id that is not hex becomes a one-byte id, which validation then rejects as that item's error.
    """
    if depth > 16:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    raw = binascii.unhexlify(value) if value else b""
                except (binascii.Error, ValueError):
                    raw = b"\xff"
                node[key] = base64.b64encode(raw).decode()
            elif isinstance(value, dict | list) and key not in ("attributes", "body", "value"):
                _hex_ids_to_base64(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item, depth + 1)


def serialize_response(signal: Signal, decoded: Decoded | None, encoding: Encoding) -> bytes:
    """An Export*ServiceResponse, with partial_success filled when items were rejected."""
    response = RESPONSE_TYPES[signal]()
    if decoded is not None and decoded.rejected:
        partial = response.partial_success
        field = {
            "traces": "rejected_spans",
            "logs": "rejected_log_records",
            "metrics": "rejected_data_points",
        }
        setattr(partial, field[signal], decoded.rejected)
        partial.error_message = decoded.error
    if encoding == "json":
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()
