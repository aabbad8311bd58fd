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
from collector.wal import WalError
from triage.errors import Overloaded

log = logging.getLogger("triage.collector")


class Receiver:
    """Shared by the HTTP and gRPC receivers: one pipeline, counted per transport, PHI redacted."""

    def __init__(self, pipeline: Pipeline, redactor: Redactor | None = None, retention_days: int | None = None) -> None:
        self.pipeline = pipeline
        self.redactor = redactor
        # Items older than this would be dropped by the store's TTL at once: refused instead, by name.
        self.retention_days = retention_days

    def accept(self, signal: Signal, body: bytes, encoding: Encoding, transport: str) -> Decoded:
        """Decode, validate and queue one request, and wait until it is durable (blocking: threads).

        Raises DecodeError, or Overloaded when it cannot be taken (buffer full, log unwritable).
        """
        decoded = self.queue(signal, body, encoding, transport)
        self._durable(decoded, self.pipeline.wait_durable)
        return decoded

    async def accept_async(self, signal: Signal, body: bytes, encoding: Encoding, transport: str) -> Decoded:
        """`accept` for an event loop: the request waits for its fsync without holding up the others."""
        decoded = self.queue(signal, body, encoding, transport)
        try:
            await self.pipeline.durable(decoded.wal_position)
        except WalError as exc:
            raise Overloaded(str(exc), retry_after=10, unavailable=True) from exc
        return decoded

    def queue(self, signal: Signal, body: bytes, encoding: Encoding, transport: str) -> Decoded:
        """Decode, validate and queue one request, not waiting for the log (then wait on `wal_position`)."""
        try:
            message = parse(signal, body, encoding)
        except Exception:
            metrics.REQUESTS.labels(transport, signal, "bad_request").inc()
            raise
        # An untouched protobuf body is written as received: no re-serialization on the hot path.
        return self._submit(signal, message, transport, body if encoding == "protobuf" else None)

    def accept_message(self, signal: Signal, message: Any, transport: str) -> Decoded:
        """Validate, queue and make durable a request built in-process (raw log lines, file tails)."""
        decoded = self._submit(signal, message, transport, None)
        self._durable(decoded, self.pipeline.wait_durable)
        return decoded

    @staticmethod
    def _durable(decoded: Decoded, wait: Any) -> None:
        try:
            wait(decoded.wal_position)
        except WalError as exc:
            raise Overloaded(str(exc), retry_after=10, unavailable=True) from exc

    def _submit(self, signal: Signal, message: Any, transport: str, body: bytes | None) -> Decoded:
        decoded = validate(signal, message, self.retention_days)
        # Validation may have removed items, or stamped a log record's observed time: re-serialize then.
        payload = body if decoded.rejected == 0 and not decoded.rewritten else None
        # Redaction happens before anything is queued, so PHI never reaches the buffer, spool or store.
        if self.redactor is not None and self.redactor.redact_message(message, payload):
            payload = None
        if signal == "traces":
            decoded.nested_values = has_nested_values(message, payload)
        try:
            decoded.wal_position = self.pipeline.submit(decoded, payload)
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
