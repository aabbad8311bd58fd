"""Real telemetry from the simulated services: OTLP spans and logs through the OpenTelemetry SDK,
raw integration-engine log lines and queue samples through Triage's API.

Every span and log line that leaves here is also written down as the business event Triage
should derive from it (simulator.observe) and as a call in dependency health, so that the
ground truth follows exactly what was sent, when it was sent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import Logger, LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from simulator.observe import Observer, health_components, health_error
from simulator.transactions import Transaction
from simulator.truth import HealthLedger
from triage.errors import TriageError

log = logging.getLogger("triage.simulator")
KIND_NAMES = {
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
    SpanKind.INTERNAL: "Internal",
}
MIRTH_SOURCE = "mirth"
_SEVERITY = {"INFO": (SeverityNumber.INFO, 9), "WARN": (SeverityNumber.WARN, 13), "ERROR": (SeverityNumber.ERROR, 17)}
RAW_EVERY = 0.5  # seconds between POSTs of raw log lines
_QUEUE_SIZE = 1 << 18  # the backfill sends tens of thousands of spans at once: never drop them
PATIENCE = 120.0  # seconds a batch is offered again while Triage refuses it (429/503) before it counts as lost


@dataclass
class SpanRef:
    """A sent span, for children (context), links and message headers (span_context)."""

    context: otel_context.Context
    span_context: trace.SpanContext


@dataclass
class _Pending:
    """A span whose telemetry is held back (a late delivery) until `deliver_at`."""

    deliver_at: float
    span: Any
    end_ns: int
    txs: Sequence[Transaction]
    record: dict[str, Any]


@dataclass
class Exporters:
    """Where the SDK providers export: OTLP/HTTP to Triage (or, in tests, memory)."""

    spans: Callable[[], SpanExporter]
    logs: Callable[[], LogRecordExporter]


def otlp_exporters(otlp_url: str, headers: dict[str, str]) -> Exporters:
    """OTLP/HTTP exporters to Triage's receiver."""
    try:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # a dependency of the demo only
        raise TriageError(
            "the demo needs the OTLP/HTTP exporter: pip install opentelemetry-exporter-otlp-proto-http"
        ) from exc
    return Exporters(
        spans=lambda: OTLPSpanExporter(endpoint=f"{otlp_url}/v1/traces", headers=headers, timeout=10),
        logs=lambda: OTLPLogExporter(endpoint=f"{otlp_url}/v1/logs", headers=headers, timeout=10),
    )


class _Patience:
    """Offers a batch again until Triage takes it. The SDK's OTLP exporter gives a batch up once its
    own timeout passes (a Retry-After longer than what is left of it included): under backpressure,
    while the backfill is written on a slow machine, that silently loses telemetry the ground truth
    counts as sent. A real estate's collector queues and retries; so does the simulator."""

    def __init__(self, what: str, closing: threading.Event) -> None:
        self.what = what
        self.closing = closing
        self.lost = 0

    def offer(self, send: Callable[[], bool], items: int) -> bool:
        deadline, pause = time.monotonic() + PATIENCE, 0.5
        while True:
            if send():
                return True
            if self.closing.is_set() or time.monotonic() + pause > deadline:
                self.lost += items
                log.warning("event=telemetry_lost what=%s items=%d lost=%d", self.what, items, self.lost)
                return False
            log.info("event=telemetry_retry what=%s items=%d pause=%.1f", self.what, items, pause)
            self.closing.wait(pause)
            pause = min(pause * 2, 5.0)


class _PatientSpans(SpanExporter):
    def __init__(self, inner: SpanExporter, patience: _Patience) -> None:
        self.inner, self.patience = inner, patience

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        sent = self.patience.offer(lambda: self.inner.export(spans) == SpanExportResult.SUCCESS, len(spans))
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _PatientLogs(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, patience: _Patience) -> None:
        self.inner, self.patience = inner, patience

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        sent = self.patience.offer(lambda: self.inner.export(batch) == LogRecordExportResult.SUCCESS, len(batch))
        return LogRecordExportResult.SUCCESS if sent else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Telemetry:
    """The estate's services as OpenTelemetry SDK providers exporting to Triage, plus its API."""

    def __init__(
        self,
        otlp_url: str,
        api_url: str,
        api_key: str | None,
        observer: Observer,
        health: HealthLedger,
        exporters: Exporters | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.otlp_url = otlp_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.exporters = exporters or otlp_exporters(self.otlp_url, self.headers)
        self.api = httpx.Client(base_url=api_url, headers=self.headers, timeout=10, transport=transport)
        self.observer = observer
        self.health = health
        self._tracers: dict[str, trace.Tracer] = {}
        self._loggers: dict[str, Logger] = {}
        self._providers: list[TracerProvider | LoggerProvider] = []
        self._late: list[_Pending] = []
        self._raw: list[tuple[str, int, Transaction | None, dict[str, Any]]] = []
        self._raw_sent = 0.0
        self.sent_spans = 0
        self.dropped_lines = 0
        self._closing = threading.Event()
        self.span_delivery = _Patience("spans", self._closing)
        self.log_delivery = _Patience("logs", self._closing)

    def _tracer(self, service: str) -> trace.Tracer:
        tracer = self._tracers.get(service)
        if tracer is None:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            processor = BatchSpanProcessor(
                _PatientSpans(self.exporters.spans(), self.span_delivery),
                max_queue_size=_QUEUE_SIZE,
                schedule_delay_millis=250,
                max_export_batch_size=2048,
            )
            provider.add_span_processor(processor)
            self._providers.append(provider)
            tracer = self._tracers[service] = provider.get_tracer("triage.simulator")
        return tracer

    def _logger(self, service: str) -> Logger:
        logger = self._loggers.get(service)
        if logger is None:
            provider = LoggerProvider(resource=Resource.create({"service.name": service}))
            provider.add_log_record_processor(
                BatchLogRecordProcessor(
                    _PatientLogs(self.exporters.logs(), self.log_delivery),
                    max_queue_size=_QUEUE_SIZE,
                    schedule_delay_millis=250,
                )
            )
            self._providers.append(provider)
            created = provider.get_logger("triage.simulator")
            assert isinstance(created, Logger)
            logger = self._loggers[service] = created
        return logger

    def span(
        self,
        tx: Transaction | None,
        service: str,
        name: str,
        kind: SpanKind,
        start_ns: int,
        end_ns: int,
        attributes: Mapping[str, Any],
        parent: SpanRef | None = None,
        links: Sequence[SpanRef] = (),
        error: str | None = None,
        deliver_at: float | None = None,
        also: Sequence[Transaction] = (),
    ) -> SpanRef:
        """Send one span with explicit times; with `deliver_at`, hold its telemetry back until then.
        The span is an event of `tx` and of every transaction in `also` (a batch job's span)."""
        context = parent.context if parent else otel_context.Context()
        span = self._tracer(service).start_span(
            name,
            context=context,
            kind=kind,
            attributes=dict(attributes),
            links=[Link(link.span_context) for link in links],
            start_time=start_ns,
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        record = {
            "service": service,
            "name": name,
            "kind": KIND_NAMES[kind],
            "attributes": attributes,
            "error": error,
            "start_ns": start_ns,
        }
        ref = SpanRef(trace.set_span_in_context(span), span.get_span_context())
        txs = [t for t in (tx, *also) if t is not None]
        if deliver_at is not None and deliver_at > time.time():
            self._late.append(_Pending(deliver_at, span, end_ns, txs, record))
        else:
            self._end(span, end_ns, txs, record)
        return ref

    def _end(self, span: Any, end_ns: int, txs: Sequence[Transaction], record: dict[str, Any]) -> None:
        span.end(end_time=end_ns)
        self.sent_spans += 1
        emitted = time.time()
        failed = record["error"] is not None
        components = health_components(record["service"], record["kind"], record["attributes"])
        if components:
            self.health.record(
                record["start_ns"] / 1e9, emitted, components, health_error(failed, record["attributes"])
            )
        for tx in txs:
            observation = self.observer.span(
                tx.workflow,
                service=record["service"],
                name=record["name"],
                kind=record["kind"],
                attributes=record["attributes"],
                status_message=record["error"],
                failed=failed,
                at_ns=record["start_ns"],
                emitted=emitted,
            )
            if observation is not None:
                tx.observations.append(observation)

    def log(
        self,
        tx: Transaction,
        service: str,
        at_ns: int,
        level: str,
        body: str,
        attributes: Mapping[str, str],
        parent: SpanRef | None = None,
    ) -> None:
        """Send one OTLP log record (with the trace context of `parent`)."""
        number, value = _SEVERITY[level]
        self._logger(service).emit(
            timestamp=at_ns,
            observed_timestamp=at_ns,
            context=parent.context if parent else None,
            severity_number=number,
            severity_text=level,
            body=body,
            attributes=dict(attributes),
        )
        observation = self.observer.log(
            tx.workflow,
            service=service,
            body=body,
            attributes=attributes,
            severity=value,
            at_ns=at_ns,
            emitted=time.time(),
        )
        if observation is not None:
            tx.observations.append(observation)

    def mirth(self, tx: Transaction | None, at_ns: int, level: str, channel: str, logger: str, message: str) -> None:
        """Queue one integration-engine log line in Mirth's layout (sent by `pump`, no trace id)."""
        at_ns -= at_ns % 1_000_000  # the layout keeps milliseconds
        stamp = datetime.fromtimestamp(at_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        channel_id = uuid.uuid5(uuid.NAMESPACE_URL, f"mirth:{channel}")
        line = f"{level:<5} {stamp} [Channel Dispatch Thread on {channel} ({channel_id})] {logger}: {message}"
        self._raw.append((line, at_ns, tx, {"level": level, "channel": channel, "body": message}))

    def pump(self, now: float) -> None:
        """Deliver late spans that are due and the queued raw log lines."""
        due = [p for p in self._late if p.deliver_at <= now]
        if due:
            self._late = [p for p in self._late if p.deliver_at > now]
            for p in due:
                self._end(p.span, p.end_ns, p.txs, p.record)
        if self._raw and now - self._raw_sent >= RAW_EVERY:
            self._raw_sent = now
            self._send_raw()

    def _send_raw(self) -> None:
        batch, self._raw = self._raw, []
        body = "\n".join(line for line, *_ in batch) + "\n"
        for attempt in range(3):
            try:
                response = self.api.post(
                    "/api/v1/logs/raw",
                    params={"source": MIRTH_SOURCE},
                    content=body.encode(),
                    headers={"Content-Type": "text/plain"},
                )
            except httpx.HTTPError as exc:
                log.warning("event=raw_logs_failed attempt=%d error=%r", attempt + 1, exc)
                time.sleep(0.5)
                continue
            if response.status_code in (429, 503):
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code != 200:
                break
            emitted = time.time()
            for _, at_ns, tx, info in batch:
                if tx is None:
                    continue
                observation = self.observer.log(
                    tx.workflow,
                    service="integration-engine",
                    body=info["body"],
                    attributes={"channel": info["channel"]},
                    severity=_SEVERITY[info["level"]][1],
                    at_ns=at_ns,
                    emitted=emitted,
                )
                if observation is not None:
                    tx.observations.append(observation)
            return
        self.dropped_lines += len(batch)
        log.warning("event=raw_logs_dropped lines=%d", len(batch))

    def push_queue_samples(self, samples: list[dict[str, Any]]) -> None:
        """Report the simulator's own queues through POST /api/v1/queues/samples."""
        if not samples:
            return
        try:
            response = self.api.post("/api/v1/queues/samples", json=samples)
        except httpx.HTTPError as exc:
            log.warning("event=queue_samples_failed error=%r", exc)
            return
        if response.status_code != 202:
            log.warning("event=queue_samples_refused status=%d body=%s", response.status_code, response.text[:300])

    def flush(self, timeout: float = PATIENCE) -> bool:
        """Send everything held back or buffered now; whether all of it was taken in `timeout`."""
        for p in self._late:
            p.deliver_at = 0.0
        return self.export(timeout)

    def export(self, timeout: float = PATIENCE) -> bool:
        """Hand Triage everything sent so far (the SDK's buffers, queued raw lines) before returning;
        telemetry held back as late stays held back. False when some of it was not taken within
        `timeout` (still being offered again) or was lost (`lost`)."""
        self._raw_sent = 0.0
        self.pump(time.time())
        lost = self.lost
        deadline = time.monotonic() + timeout
        flushed = True
        for provider in self._providers:
            left = max(deadline - time.monotonic(), 0.0)
            flushed = provider.force_flush(int(left * 1000)) and flushed
        return flushed and self.lost == lost

    @property
    def lost(self) -> int:
        """Spans, log records and raw lines Triage never took (refused for longer than PATIENCE)."""
        return self.span_delivery.lost + self.log_delivery.lost + self.dropped_lines

    def close(self) -> None:
        self._closing.set()  # the server may be gone: a refused batch is not offered again
        for provider in self._providers:
            provider.shutdown()
        self.api.close()
