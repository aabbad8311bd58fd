"""Log entries as an OTLP ExportLogsServiceRequest, and handing raw lines to the receiver."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from collector.logs import metrics
from collector.logs.parse import EntryAssembler, LineParser, LogEntry
from collector.receiver import Receiver
from triage.settings import LogSource

SCOPE_NAME = "triage.collector.logs"


@dataclass
class ParsedLines:
    """The request made from a batch of lines, and what became of them."""

    request: ExportLogsServiceRequest
    lines: int
    records: int
    unparsed: int


def split_lines(text: str) -> list[str]:
    """A body's lines, split on LF only (HL7 segments in a logged message end in CR); CRLF loses its CR."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _put(attributes: Any, key: str, value: str) -> None:
    kv = attributes.add()
    kv.key = key
    kv.value.string_value = value


def build_request(
    source: LogSource,
    entries: Sequence[LogEntry],
    attributes: Mapping[str, str] | None = None,
    observed_unix_nano: int | None = None,
) -> ExportLogsServiceRequest:
    """One resource (service.name, log.source) with one scope holding a record per entry."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    _put(resource_logs.resource.attributes, "service.name", source.service or source.name)
    _put(resource_logs.resource.attributes, "log.source", source.name)
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = SCOPE_NAME
    _put(scope_logs.scope.attributes, "log.profile", source.format)
    observed = observed_unix_nano or time.time_ns()
    extra = dict(attributes or {})
    for entry in entries:
        record = scope_logs.log_records.add()
        record.time_unix_nano = entry.time_unix_nano
        record.observed_time_unix_nano = observed
        record.severity_text = entry.severity_text
        record.severity_number = entry.severity_number  # type: ignore[assignment]
        record.body.string_value = entry.body
        if entry.trace_id:
            record.trace_id = entry.trace_id
            record.flags = entry.trace_flags
        if entry.span_id:
            record.span_id = entry.span_id
        for key, value in {**entry.attributes, **extra}.items():
            _put(record.attributes, key, value)
    return request


def parse_batch(source: LogSource, lines: Iterable[str], now: Callable[[], datetime] | None = None) -> ParsedLines:
    """Parse a complete batch of lines (a request body): the last entry is final."""
    assembler = EntryAssembler(LineParser(source, now))
    entries: list[LogEntry] = []
    for line in lines:
        entries.extend(assembler.feed(line))
    entries.extend(assembler.flush())
    return ParsedLines(
        build_request(source, entries),
        lines=assembler.lines,
        records=len(entries),
        unparsed=sum(1 for e in entries if not e.parsed),
    )


def parse_lines(source: LogSource, lines: Iterable[str]) -> ExportLogsServiceRequest:
    """The OTLP logs request for these lines of the source, parsed by its profile (pure; no I/O)."""
    return parse_batch(source, lines).request


def count_records(source: LogSource, records: int, unparsed: int) -> None:
    metrics.LOG_RECORDS.labels(source.name, "parsed").inc(records - unparsed)
    metrics.LOG_RECORDS.labels(source.name, "unparsed").inc(unparsed)


def ingest_lines(receiver: Receiver, source: LogSource, lines: Iterable[str], transport: str) -> ParsedLines:
    """Parse and hand to the receiver (which validates, redacts and queues); raises Overloaded when full."""
    batch = parse_batch(source, lines)
    if batch.records:
        receiver.accept_message("logs", batch.request, transport)
        count_records(source, batch.records, batch.unparsed)
    return batch
