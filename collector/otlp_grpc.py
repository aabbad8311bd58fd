"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService on one port.

Methods are registered with no request deserializer so the receiver sees the raw bytes: they are
validated like an HTTP body and, when nothing was rejected, written as received.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc

from collector.otlp import Signal, serialize_response
from collector.receiver import Receiver
from triage.auth import ApiKeys
from triage.errors import DecodeError, Overloaded
from triage.settings import Ingest

log = logging.getLogger("triage.collector")

_SERVICES: dict[Signal, str] = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


def _handler(receiver: Receiver, keys: ApiKeys, signal: Signal) -> grpc.RpcMethodHandler:
    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        if keys.enabled:
            metadata = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
            if not keys.allows(metadata):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, ApiKeys.CHALLENGE)
        try:
            decoded = receiver.accept(signal, body, "protobuf", "grpc")
        except DecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            # UNAVAILABLE is retryable for OTLP exporters; RESOURCE_EXHAUSTED only with RetryInfo.
            context.set_trailing_metadata((("retry-after", str(exc.retry_after)),))
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return serialize_response(signal, decoded, "protobuf")

    return grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)


def create_otlp_grpc_server(receiver: Receiver, ingest: Ingest, keys: ApiKeys, host: str, port: int) -> Any:
    """A started-later grpc.Server bound to host:port; `.bound_port` holds the port actually bound."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", ingest.max_decompressed_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
    )
    for signal, service in _SERVICES.items():
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"Export": _handler(receiver, keys, signal)}),)
        )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC to {host}:{port}: the port is in use or not allowed")
    server.bound_port = bound
    return server
