"""The write pipeline: a bounded buffer of accepted requests and one writer thread that batches them.

Shaped like the OpenTelemetry SDK's BatchSpanProcessor: bounded, flushed on size or time and at
shutdown. It never drops: a full buffer refuses new work (the receiver answers 429/503 with
Retry-After), and a failed insert is retried with backoff.

With the write-ahead log (the default), every accepted request is appended to it before it is
acknowledged; a request leaves the log once its rows are stored, and what is still there at the
next start (after a crash, or a shutdown while the store was down) is written then, except what
the store already holds: each row carries its request's id (TriageRequest). Without the log, what
cannot be written at shutdown is spooled to disk and replayed at the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector import flatten, metrics
from collector.nested import has_nested_values
from collector.otlp import REQUEST_TYPES, Decoded, Signal
from collector.spool import Spool
from collector.validate import validate
from collector.wal import Record, WalError, WriteAheadLog
from triage.errors import Overloaded
from triage.settings import Ingest
from triage.store import Store
from triage.store.repair import detach_torn_part

log = logging.getLogger("triage.collector")
NATIVE_RETRY_SECONDS = 300


@dataclass
class WorkItem:
    """One accepted request: its message (or serialized bytes) and how many rows it carries."""

    signal: Signal
    rows: int
    message: Any = None
    payload: bytes | None = None
    native: bool = False
    request: int = 0  # the write-ahead log's id of the request (0 without the log)
    size: int = 0  # bytes, as serialized: what the buffer's byte limit counts

    def serialized(self) -> bytes:
        if self.payload is None:
            self.payload = self.message.SerializeToString()
        return self.payload

    def parsed(self) -> Any:
        if self.message is None:
            self.message = REQUEST_TYPES[self.signal].FromString(self.payload or b"")
        return self.message


@dataclass
class _State:
    items: deque[WorkItem] = field(default_factory=deque)
    rows: int = 0
    bytes: int = 0
    in_flight: int = 0
    closed: bool = False


class Pipeline:
    """Accepts validated requests from every receiver and writes them to the store in batches."""

    def __init__(
        self, store: Store, ingest: Ingest, *, native_traces: bool = True, wal: WriteAheadLog | None = None
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.native_traces = native_traces
        self.wal = wal
        self.spool = Spool(ingest.spool_dir) if ingest.spool_dir and wal is None else None
        self._state = _State()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._native_failed_at = 0.0
        self.last_error: str = ""
        metrics.BUFFER_CAPACITY.set(ingest.buffer_max_rows)

    def start(self) -> None:
        """Queue what the log (or spool) kept from before, then start writing."""
        if self.wal is not None:
            self._replay(self.wal.replay())
            self.wal.start()
        if self.spool is not None:
            for signal, payload in self.spool.drain():
                self._enqueue(self._restored(signal, payload), force=True)
        self._thread = threading.Thread(target=self._run, name="triage-writer", daemon=True)
        self._thread.start()

    @property
    def buffered_rows(self) -> int:
        return self._state.rows

    def submit(self, decoded: Decoded, payload: bytes | None = None) -> int:
        """Queue a validated request; Overloaded when the buffer cannot take it.

        Returns the write-ahead log position to wait for (`wait_durable`) before acknowledging it.
        """
        if decoded.accepted == 0:
            return 0
        native = decoded.signal == "traces" and self.native_traces and not decoded.nested_values
        item = WorkItem(decoded.signal, decoded.accepted, message=decoded.message, payload=payload, native=native)
        return self._enqueue(item)

    def wait_durable(self, position: int) -> None:
        """Block until the request at `position` is on disk (threads: gRPC, file tails)."""
        if self.wal is not None and position:
            self.wal.wait(position, self.ingest.wal.sync_timeout)

    async def durable(self, position: int) -> None:
        """Wait until the request at `position` is on disk, without blocking the event loop."""
        if self.wal is not None and position:
            await self.wal.wait_async(position, self.ingest.wal.sync_timeout)

    def _enqueue(self, item: WorkItem, force: bool = False) -> int:
        position = 0
        with self._cond:
            st = self._state
            if st.closed and not force:
                raise Overloaded("Triage is shutting down; retry against another instance or after restart", 5)
            item.size = len(item.payload) if item.payload is not None else item.message.ByteSize()
            full = (
                st.rows + item.rows > self.ingest.buffer_max_rows or st.bytes + item.size > self.ingest.buffer_max_bytes
            )
            if not force and full and st.rows > 0:
                raise Overloaded(
                    f"write buffer full ({st.rows} rows, {st.bytes >> 20} MiB waiting; capacity "
                    f"{self.ingest.buffer_max_rows} rows, {self.ingest.buffer_max_bytes >> 20} MiB); "
                    "retry after the Retry-After delay",
                    retry_after=2 if not self.last_error else 10,
                    unavailable=bool(self.last_error),
                )
            if self.wal is not None and not item.request:
                # In the log before it is in the buffer: the writer may store it at once, never before.
                try:
                    item.request, position = self.wal.append(item.signal, item.serialized())
                except WalError as exc:
                    raise Overloaded(f"{exc}; free space there, then retry", retry_after=10, unavailable=True) from exc
            if item.native and item.payload is not None:
                item.message = None  # the native path needs only the bytes: hold one copy, not two
            st.items.append(item)
            st.rows += item.rows
            st.bytes += item.size
            metrics.BUFFER_ROWS.set(st.rows)
            metrics.BUFFER_BYTES.set(st.bytes)
            if st.rows >= self.ingest.batch_max_rows:
                self._cond.notify_all()
            elif len(st.items) == 1:
                self._cond.notify_all()
        return position

    def _restored(self, signal: Signal, payload: bytes, request: int = 0) -> WorkItem:
        decoded = validate(signal, REQUEST_TYPES[signal].FromString(payload))
        native = signal == "traces" and self.native_traces and not has_nested_values(decoded.message, payload)
        return WorkItem(
            signal, decoded.accepted, message=decoded.message, payload=payload, native=native, request=request
        )

    def _replay(self, records: list[Record]) -> None:
        """Queue the logged requests the store does not hold yet; rows of a half-written one are removed first."""
        if not records:
            return
        items = [self._restored(r.signal, r.payload, r.seq) for r in records]
        stored = requests_stored(self.store, [i.request for i in items])
        partial = [i.request for i in items if 0 < stored.get(i.request, 0) < i.rows]
        if partial:
            remove_requests(self.store, partial)
        again = [i for i in items if stored.get(i.request, 0) < i.rows]
        for item in again:
            self._enqueue(item, force=True)
        kept = [i.request for i in items if stored.get(i.request, 0) >= i.rows]
        assert self.wal is not None
        self.wal.done(kept)
        metrics.WAL_REPLAYED.labels("written").inc(len(again))
        metrics.WAL_REPLAYED.labels("already_stored").inc(len(kept))
        log.warning(
            "event=wal_replayed requests=%d rows=%d already_stored=%d half_written=%d",
            len(again),
            sum(i.rows for i in again),
            len(kept),
            len(partial),
        )

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything accepted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._state.items or self._state.in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Refuse new work, write what is buffered; what cannot be written stays in the log (or is spooled)."""
        with self._cond:
            self._state.closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left = list(self._state.items)
            self._state.items.clear()
            self._state.rows = self._state.bytes = 0
        if self.wal is not None:
            if left:
                log.error(
                    "event=unwritten_kept_in_wal rows=%d dir=%s reason=%r",
                    sum(i.rows for i in left),
                    self.wal.directory,
                    self.last_error,
                )
            self.wal.close()
        elif left:
            self._spool_items(left)

    def _spool_items(self, items: list[WorkItem]) -> None:
        spool = self.spool or Spool(None)
        spool.write((i.signal, i.serialized()) for i in items)
        rows = sum(i.rows for i in items)
        metrics.SPOOLED_ROWS.inc(rows)
        log.error("event=spooled rows=%d dir=%s reason=%r", rows, spool.directory, self.last_error)

    def _take_batch(self) -> list[WorkItem]:
        """Block until a batch is due (size or age), then take it."""
        with self._cond:
            st = self._state
            while not st.items and not st.closed:
                self._cond.wait(0.5)
            if not st.items:
                return []
            deadline = time.monotonic() + self.ingest.batch_max_delay
            while st.rows < self.ingest.batch_max_rows and not st.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[WorkItem] = []
            rows = 0
            while st.items and (not batch or rows + st.items[0].rows <= self.ingest.batch_max_rows * 2):
                item = st.items.popleft()
                batch.append(item)
                rows += item.rows
            st.in_flight = len(batch)
            return batch

    def _run(self) -> None:
        backoff = 0.1
        unsure = False  # a write failed since the last success: what it stored is not known
        last_good = datetime.now(UTC)  # every row stored before this was acknowledged in a finished write
        while True:
            batch = self._take_batch()
            if not batch:
                if self._state.closed:
                    return
                continue
            try:
                # After a failed write part of a batch may be stored (the native insert's view, or the
                # traces of a batch whose logs then failed): write only what the store does not hold.
                self._write(self._unwritten(batch) if unsure else batch)
                if self.wal is not None:
                    self.wal.done([i.request for i in batch])
                unsure = False
                backoff = 0.1
                last_good = datetime.now(UTC)
                self.last_error = ""
                with self._cond:
                    self._state.rows -= sum(i.rows for i in batch)
                    self._state.bytes -= sum(i.size for i in batch)
                    self._state.in_flight = 0
                    metrics.BUFFER_ROWS.set(self._state.rows)
                    metrics.BUFFER_BYTES.set(self._state.bytes)
                    self._cond.notify_all()
            except Exception as exc:
                unsure = True
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._repair(str(exc), last_good)
                log.error(
                    "event=write_failed rows=%d error=%r retry_in=%.1fs",
                    sum(i.rows for i in batch),
                    self.last_error,
                    backoff,
                )
                with self._cond:
                    self._state.items.extendleft(reversed(batch))
                    self._state.in_flight = 0
                    if self._state.closed:
                        return
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _repair(self, error: str, last_good: datetime) -> None:
        """A part torn by a full disk fails every read of it, the retry's own included: detach it when only
        rows of unfinished writes (still in this buffer) can be in it (triage/store/repair.py)."""
        try:
            detach_torn_part(self.store, error, last_good)
        except Exception as exc:  # the store may still be failing; the next retry tries again
            log.warning("event=torn_part_check_failed error=%r", exc)

    def _unwritten(self, batch: list[WorkItem]) -> list[WorkItem]:
        """The batch less the requests the store holds whole; the rows of half-stored ones are removed
        first (as a replay does). Requests without an id (no write-ahead log) cannot be told apart."""
        ids = [i.request for i in batch if i.request]
        if not ids:
            return batch
        stored = requests_stored(self.store, ids)
        partial = [i.request for i in batch if i.request and 0 < stored.get(i.request, 0) < i.rows]
        if partial:
            remove_requests(self.store, partial)
        whole = {i.request for i in batch if i.request and stored.get(i.request, 0) >= i.rows}
        if whole or partial:
            log.warning("event=write_retried already_stored=%d half_written=%d", len(whole), len(partial))
        return [i for i in batch if i.request not in whole]

    def _write(self, batch: list[WorkItem]) -> None:
        native_ok = time.monotonic() - self._native_failed_at > NATIVE_RETRY_SECONDS
        native = [i for i in batch if i.native and native_ok]
        by_signal: dict[str, list[WorkItem]] = {"traces": [], "logs": [], "metrics": []}
        for item in batch:
            if not (item.native and native_ok):
                by_signal[item.signal].append(item)
        if native:
            self._write_native(native, by_signal["traces"])
        if by_signal["traces"]:
            self._insert("otel_traces", _tagged(by_signal["traces"], flatten.trace_columns))
        if by_signal["logs"]:
            self._insert("otel_logs", _tagged(by_signal["logs"], flatten.log_columns))
        if by_signal["metrics"]:
            tables: dict[str, dict[str, list[Any]]] = {}
            for item in by_signal["metrics"]:
                for table, cols in flatten.metric_columns([item.parsed()]).items():
                    _extend(tables.setdefault(table, {}), cols, item.request)
            for table, cols in tables.items():
                self._insert(table, cols)

    def _write_native(self, items: list[WorkItem], fallback: list[WorkItem]) -> None:
        started = time.perf_counter()
        try:
            from collector import native

            native.insert_trace_requests(self.store, [native.with_request(i.serialized(), i.request) for i in items])
        except Exception as exc:
            if not self.store.ping():
                raise
            # The store is up, so the native format itself failed (e.g. a server without our schema
            # file): write these through the Python path, and keep using it for a while.
            log.error(
                "event=native_insert_failed fallback=python retry_native_in=%ds error=%r",
                NATIVE_RETRY_SECONDS,
                exc,
            )
            self._native_failed_at = time.monotonic()
            fallback.extend(items)
            return
        metrics.WRITE_SECONDS.labels("otel_traces").observe(time.perf_counter() - started)
        metrics.WRITTEN_ROWS.labels("otel_traces").inc(sum(i.rows for i in items))

    def _insert(self, table: str, cols: dict[str, list[Any]]) -> None:
        names = list(cols)
        rows = len(cols[names[0]]) if names else 0
        if rows == 0:
            return
        started = time.perf_counter()
        try:
            self.store.insert(table, [cols[n] for n in names], names, column_oriented=True)
        except Exception:
            metrics.WRITE_ERRORS.labels(table).inc()
            raise
        metrics.WRITE_SECONDS.labels(table).observe(time.perf_counter() - started)
        metrics.WRITTEN_ROWS.labels(table).inc(rows)


def _extend(into: dict[str, list[Any]], cols: dict[str, list[Any]], request: int) -> None:
    """Append one request's columns to a batch's, with its id on every row."""
    rows = len(next(iter(cols.values()))) if cols else 0
    for name, values in cols.items():
        into.setdefault(name, []).extend(values)
    into.setdefault(REQUEST_COLUMN, []).extend([request] * rows)


def _tagged(items: list[WorkItem], columns: Any) -> dict[str, list[Any]]:
    """The batch's columns, flattened request by request so that each row names its request."""
    out: dict[str, list[Any]] = {}
    for item in items:
        _extend(out, columns([item.parsed()]), item.request)
    return out


REQUEST_COLUMN = "TriageRequest"
_REQUEST_TABLES = ("otel_traces", "otel_logs", *(table for table, _ in flatten.METRIC_TABLES.values()))
_STORED = (
    "SELECT TriageRequest, count() FROM {table} WHERE TriageRequest IN {{ids:Array(UInt64)}} GROUP BY TriageRequest"
)
_REMOVE = "DELETE FROM {table} {on_cluster} WHERE TriageRequest IN {{ids:Array(UInt64)}}"


def requests_stored(store: Store, requests: list[int]) -> dict[int, int]:
    """How many rows the store holds of each request (by the TriageRequest the rows carry)."""
    found: dict[int, int] = {}
    for table in _REQUEST_TABLES:
        for request, count in store.query(_STORED.format(table=table), {"ids": requests}).result_rows:
            found[int(request)] = found.get(int(request), 0) + int(count)
    return found


def remove_requests(store: Store, requests: list[int]) -> None:
    """Delete the rows of requests only part of which was stored (a write cut by a crash), to write them whole."""
    for table in _REQUEST_TABLES:
        # On a cluster the rows are in each shard's local table (a Distributed table takes no DELETE).
        target = store.local_table(table)
        store.command(_REMOVE.format(table=target, on_cluster=store.on_cluster), {"ids": requests})
