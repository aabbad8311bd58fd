"""Raw integration-engine logs: named profiles parse lines into OTLP log records; files are tailed.

A source is a `log_sources` entry or, with no entry of that name, a built-in profile (`find_source`).

Every record goes through the receiver (validation, PHI redaction, batching) like OTLP logs do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from collector.logs.parse import PARSE_ERROR, EntryAssembler, LineParser, LogEntry
from collector.logs.positions import PositionStore
from collector.logs.records import (
    ParsedLines,
    build_request,
    ingest_lines,
    parse_batch,
    parse_lines,
    split_lines,
)
from collector.logs.sources import builtin_source_names, find_source
from collector.logs.tail import Tailer

if TYPE_CHECKING:
    from collector.receiver import Receiver
    from triage.settings import LogSource
    from triage.store import Store

__all__ = [
    "PARSE_ERROR",
    "EntryAssembler",
    "LineParser",
    "LogEntry",
    "ParsedLines",
    "build_request",
    "builtin_source_names",
    "find_source",
    "ingest_lines",
    "parse_batch",
    "parse_lines",
    "split_lines",
    "tail_sources",
]

log = logging.getLogger("triage.collector")


async def tail_sources(sources: list[LogSource], receiver: Receiver, store: Store, stop: asyncio.Event) -> None:
    """Follow the files of every `log_sources` entry with a `path` until `stop` is set."""
    sources = [s for s in sources if s.path]
    if not sources:
        return
    tailer = Tailer(sources, receiver, PositionStore(store))
    log.info("event=log_tail_started sources=%s", ",".join(f"{s.name}:{s.path}" for s in sources))
    try:
        while not stop.is_set():
            delay = await asyncio.to_thread(tailer.poll)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    finally:
        tailer.close_soon()
        log.info("event=log_tail_stopped")
