"""OTLP/HTTP receiver: POST /v1/traces, /v1/logs, /v1/metrics with protobuf or JSON, optionally gzip."""

from __future__ import annotations

import json
import logging

from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.otlp import Encoding, Signal, decompress, encoding_for, serialize_response
from collector.receiver import Receiver
from triage.auth import ApiKeys
from triage.errors import DecodeError, Overloaded, PayloadTooLarge, UnsupportedMediaType
from triage.settings import Ingest

log = logging.getLogger("triage.collector")

_MEDIA = {"protobuf": "application/x-protobuf", "json": "application/json"}


def _status(code: int, message: str, encoding: Encoding, headers: dict[str, str] | None = None) -> Response:
    """An OTLP error response: a google.rpc.Status in the request's encoding."""
    grpc_codes = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 503: 14}
    if encoding == "json":
        body = json.dumps({"code": grpc_codes.get(code, 2), "message": message}).encode()
    else:
        body = status_pb2.Status(code=grpc_codes.get(code, 2), message=message).SerializeToString()
    return Response(body, status_code=code, media_type=_MEDIA[encoding], headers=headers)


async def read_body(request: Request, limit: int, advice: str = "send smaller batches") -> bytes:
    """The request body, refused (PayloadTooLarge) as soon as it is declared or read past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the {limit}-byte limit; {advice}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit; {advice}")
        chunks.append(chunk)
    return b"".join(chunks)


def create_otlp_http_app(receiver: Receiver, ingest: Ingest, keys: ApiKeys) -> Starlette:
    """The Starlette app for the OTLP/HTTP port."""

    async def export(request: Request) -> Response:
        signal: Signal = request.url.path.rsplit("/", 1)[-1]  # type: ignore[assignment]
        try:
            encoding = encoding_for(request.headers.get("content-type"))
        except UnsupportedMediaType as exc:
            return _status(415, str(exc), "json")
        if not keys.allows(request.headers):
            return _status(401, ApiKeys.CHALLENGE, encoding, {"WWW-Authenticate": "Bearer"})
        try:
            raw = await read_body(request, ingest.max_body_bytes)
            body = decompress(raw, request.headers.get("content-encoding"), ingest.max_decompressed_bytes)
            decoded = await receiver.accept_async(signal, body, encoding, "http")
        except PayloadTooLarge as exc:
            return _status(413, str(exc), encoding)
        except UnsupportedMediaType as exc:
            return _status(415, str(exc), encoding)
        except DecodeError as exc:
            return _status(400, str(exc), encoding)
        except Overloaded as exc:
            code = 503 if exc.unavailable else 429
            return _status(code, str(exc), encoding, {"Retry-After": str(exc.retry_after)})
        return Response(serialize_response(signal, decoded, encoding), media_type=_MEDIA[encoding])

    routes = [Route(f"/v1/{s}", export, methods=["POST"]) for s in ("traces", "logs", "metrics")]
    return Starlette(routes=routes)
