"""What every OTLP receiver does with a request body: decode, validate, queue, count."""

from __future__ import annotations

import logging
from typing import Any

from collector import metrics
from collector.nested import has_nested_values
from collector.otlp import Decoded, Encoding, Signal, parse
from collector.pipeline import Pipeline
from collector.redaction import Redactor
from collector.validate import validate
from triage.errors import Overloaded

log = logging.getLogger("triage.collector")


class Receiver:
    """Shared by the HTTP and gRPC receivers: one pipeline, counted per transport, PHI redacted."""

    def __init__(self, pipeline: Pipeline, redactor: Redactor | None = None) -> None:
        self.pipeline = pipeline
        self.redactor = redactor

    def accept(self, signal: Signal, body: bytes, encoding: Encoding, transport: str) -> Decoded:
        """Decode, validate and queue one request; raises DecodeError or Overloaded."""
        try:
            message = parse(signal, body, encoding)
        except Exception:
            metrics.REQUESTS.labels(transport, signal, "bad_request").inc()
            raise
        # An untouched protobuf body is written as received: no re-serialization on the hot path.
        return self._submit(signal, message, transport, body if encoding == "protobuf" else None)

    def accept_message(self, signal: Signal, message: Any, transport: str) -> Decoded:
        """Validate and queue a request built in-process (raw log lines, file tails, the simulator)."""
        return self._submit(signal, message, transport, None)

    def _submit(self, signal: Signal, message: Any, transport: str, body: bytes | None) -> Decoded:
        decoded = validate(signal, message)
        payload = body if decoded.rejected == 0 else None
        # Redaction happens before anything is queued, so PHI never reaches the buffer, spool or store.
        if self.redactor is not None and self.redactor.redact_message(message, payload):
            payload = None
        if signal == "traces":
            decoded.nested_values = has_nested_values(message, payload)
        try:
            self.pipeline.submit(decoded, payload)
        except Overloaded:
            metrics.REQUESTS.labels(transport, signal, "refused").inc()
            metrics.REFUSED[signal].labels(transport, "buffer_full").inc(decoded.accepted + decoded.rejected)
            raise
        metrics.ACCEPTED[signal].labels(transport).inc(decoded.accepted)
        if decoded.rejected:
            metrics.REFUSED[signal].labels(transport, "invalid").inc(decoded.rejected)
            metrics.REQUESTS.labels(transport, signal, "partial").inc()
            log.info(
                "event=partial_success transport=%s signal=%s rejected=%d error=%r",
                transport,
                signal,
                decoded.rejected,
                decoded.error,
            )
        else:
            metrics.REQUESTS.labels(transport, signal, "ok").inc()
        return decoded
