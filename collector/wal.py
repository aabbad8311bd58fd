"""The write-ahead log: an accepted request is on disk before it is acknowledged.

Every request the receivers accept (OTLP, raw log lines, tailed files) is appended to a segment
file under the log's directory, and the receiver answers only once an fsync has covered it.
Concurrent requests share one fsync (group commit, as in Prometheus's WAL and the OpenTelemetry
Collector's persistent queue): a sync thread fsyncs whatever has been written since the last sync
and wakes every request it covered.

The writer thread marks a request done once the store holds its rows; a checkpoint record then
says "every request up to here is stored", and segments wholly below it are deleted. At start, the
requests after the last checkpoint are read back; `collector.pipeline` asks the store which of them
it already holds (rows carry their request's id in TriageRequest) and writes only the rest, so a
replay never duplicates rows.

What reaches this log has been redacted already (the receiver redacts before it queues): PHI never
reaches the disk.

Record layout, little-endian: seq u64, kind u8, length u32, crc32 u32 (of the first 13 bytes and
the payload), then the payload. A record cut short by a crash (only ever the last one, never
acknowledged) fails its length or CRC check and ends the read of its segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from collector import metrics
from collector.otlp import Signal
from triage.errors import StoreError

log = logging.getLogger("triage.collector")

_HEADER = struct.Struct("<QBII")
_SIGNALS: tuple[Signal, ...] = ("traces", "logs", "metrics")
_CHECKPOINT = 255
_SUFFIX = ".wal"
_INSTANCE_FILE = "instance"


class WalError(StoreError):
    """The write-ahead log cannot take a write (disk full, read-only, gone): the request is refused."""


@dataclass(frozen=True)
class Record:
    """One request read back from the log."""

    seq: int
    signal: Signal
    payload: bytes


def _encode(seq: int, kind: int, payload: bytes) -> bytes:
    head = struct.pack("<QBI", seq, kind, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


class WriteAheadLog:
    """Segments of request records under `directory`, fsynced in groups."""

    def __init__(self, directory: str | Path, *, segment_bytes: int = 64 << 20, sync: bool = True) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.sync_enabled = sync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._instance = self._load_instance()
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._last_seq = 0
        self._written = 0  # bytes appended (over the log's life in this process)
        self._durable = 0  # bytes known to be on disk
        self._sync_error: BaseException | None = None
        self._fd = -1
        self._segment: Path | None = None
        self._segment_size = 0
        self._segment_last: dict[Path, int] = {}  # segment → highest seq in it
        self._outstanding: deque[int] = deque()
        self._done: set[int] = set()
        self._checkpoint = 0
        self._closed = False
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        # Coroutines waiting for a position: resolved by the sync thread, no thread hop per request.
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # -- ids -------------------------------------------------------------------------------------

    def _load_instance(self) -> int:
        """A random 12-bit id of this log, kept in its directory: request ids of two collectors never meet."""
        path = self.directory / _INSTANCE_FILE
        try:
            return int(path.read_text().strip()) & 0xFFF
        except (OSError, ValueError):
            value = secrets.randbelow(0x1000)
            path.write_text(f"{value}\n")
            return value

    def _next_seq(self) -> int:
        # Microseconds since the epoch, then the instance: increasing within a log, unique across logs
        # and restarts, and never reused by a later start (the store keeps these ids in TriageRequest).
        now = time.time_ns() // 1000 << 12 | self._instance
        self._last_seq = max(now, self._last_seq + 0x1000)
        return self._last_seq

    # -- reading back ----------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"))

    def replay(self) -> list[Record]:
        """The requests after the last checkpoint, oldest first (call once, before `start`)."""
        records: list[Record] = []
        checkpoint = 0
        for path in self.segments():
            last = 0
            for seq, kind, payload in _read(path):
                last = max(last, seq)
                if kind == _CHECKPOINT:
                    checkpoint = max(checkpoint, struct.unpack("<Q", payload)[0])
                elif kind < len(_SIGNALS):
                    records.append(Record(seq, _SIGNALS[kind], payload))
            self._segment_last[path] = last
            self._last_seq = max(self._last_seq, last)
        self._checkpoint = checkpoint
        pending = [r for r in records if r.seq > checkpoint]
        self._outstanding.extend(r.seq for r in pending)
        if pending:
            log.warning(
                "event=wal_replay requests=%d segments=%d dir=%s", len(pending), len(self._segment_last), self.directory
            )
        return pending

    # -- writing ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open a new segment and start the sync thread."""
        with self._lock:
            self._roll()
        self._thread = threading.Thread(target=self._sync_loop, name="triage-wal-sync", daemon=True)
        self._thread.start()

    def append(self, signal: Signal, payload: bytes) -> tuple[int, int]:
        """Write one request; returns (its seq, the position `wait` takes). WalError when the disk refuses."""
        with self._lock:
            if self._closed:
                raise WalError("the write-ahead log is closed (Triage is shutting down)")
            seq = self._next_seq()
            data = _encode(seq, _SIGNALS.index(signal), payload)
            self._write(data)
            self._segment_last[self._segment] = seq  # type: ignore[index]
            self._outstanding.append(seq)
            position = self._written
        self._wakeup.set()
        metrics.WAL_BYTES.inc(len(data))
        return seq, position

    def _write(self, data: bytes) -> None:
        if self._segment_size >= self.segment_bytes:
            self._roll()
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            # A partial record at the tail fails its CRC on replay; start a fresh segment for the next one.
            self._roll()
            raise WalError(f"cannot write the write-ahead log in {self.directory}: {exc.strerror}") from exc
        self._segment_size += len(data)
        self._written += len(data)

    def _roll(self) -> None:
        """Close the current segment (fsynced) and open the next."""
        if self._fd >= 0:
            _close_synced(self._fd)
        self._segment = self.directory / f"{time.time_ns():020d}{_SUFFIX}"
        self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment_size = 0
        self._segment_last.setdefault(self._segment, 0)
        _fsync_dir(self.directory)

    def wait(self, position: int, timeout: float = 30.0) -> None:
        """Block until everything up to `position` is on disk; WalError if the fsync failed."""
        deadline = time.monotonic() + timeout
        with self._synced:
            while self._durable < position:
                if self._sync_error is not None:
                    raise WalError(f"cannot sync the write-ahead log: {self._sync_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WalError(f"the write-ahead log did not sync within {timeout:.0f}s (disk too slow?)")
                self._synced.wait(remaining)

    async def wait_async(self, position: int, timeout: float = 30.0) -> None:
        """`wait` for an event loop: the request's coroutine sleeps, the loop serves others."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._durable >= position:
                return
            if self._sync_error is not None:
                raise WalError(f"cannot sync the write-ahead log: {self._sync_error}")
            self._waiters.append((position, loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise WalError(f"the write-ahead log did not sync within {timeout:.0f}s (disk too slow?)") from exc

    def _sync_loop(self) -> None:
        while True:
            self._wakeup.wait(0.5)
            self._wakeup.clear()
            with self._lock:
                target, closed = self._written, self._closed
                # A duplicate of the descriptor: a segment roll may close the original meanwhile.
                fd = os.dup(self._fd) if target > self._durable and self._fd >= 0 else -1
            if fd >= 0:
                started = time.perf_counter()
                error: BaseException | None = None
                try:
                    if self.sync_enabled:
                        os.fsync(fd)
                except OSError as exc:
                    error = exc
                finally:
                    os.close(fd)
                metrics.WAL_SYNC_SECONDS.observe(time.perf_counter() - started)
                with self._synced:
                    if error is None:
                        self._durable = max(self._durable, target)
                        self._sync_error = None
                    else:
                        self._sync_error = error
                    self._synced.notify_all()
                    self._resolve(error)
            if closed:
                return

    def _resolve(self, error: BaseException | None) -> None:
        """Wake the coroutines whose requests this sync covered (or tell them all it failed). Holds the lock."""
        keep = []
        for position, loop, future in self._waiters:
            if error is None and position > self._durable:
                keep.append((position, loop, future))
                continue
            outcome = WalError(f"cannot sync the write-ahead log: {error}") if error is not None else None
            loop.call_soon_threadsafe(_settle, future, outcome)
        self._waiters = keep

    # -- done ------------------------------------------------------------------------------------

    def done(self, seqs: list[int]) -> None:
        """These requests are in the store: advance the checkpoint and delete segments wholly below it."""
        with self._lock:
            self._done.update(seqs)
            moved = False
            while self._outstanding and self._outstanding[0] in self._done:
                self._done.discard(self._outstanding.popleft())
                moved = True
            if not moved:
                return
            checkpoint = self._outstanding[0] - 1 if self._outstanding else self._last_seq
            self._checkpoint = checkpoint
            if self._closed:
                return
            try:
                self._write(_encode(checkpoint, _CHECKPOINT, struct.pack("<Q", checkpoint)))
            except WalError as exc:  # only a longer replay at the next start
                log.warning("event=wal_checkpoint_failed error=%s", exc)
            self._prune()

    def _prune(self) -> None:
        for path, last in list(self._segment_last.items()):
            if path != self._segment and last <= self._checkpoint:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("event=wal_segment_not_deleted file=%s error=%s", path, exc.strerror)
                    continue
                del self._segment_last[path]

    @property
    def outstanding(self) -> int:
        """Requests written here and not yet in the store."""
        return len(self._outstanding)

    def close(self) -> None:
        """Stop syncing; when every request is stored, remove the segments (a clean stop replays nothing)."""
        with self._lock:
            self._closed = True
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            if self._fd >= 0:
                _close_synced(self._fd)
                self._fd = -1
            if not self._outstanding:
                self._checkpoint = self._last_seq
                self._segment = None
                self._prune()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # timed out meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _read(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """The records of one segment, up to the first one cut short or damaged."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.error("event=wal_segment_unreadable file=%s error=%s", path, exc.strerror)
        return
    pos = 0
    while pos + _HEADER.size <= len(data):
        seq, kind, length, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        payload = data[pos + _HEADER.size : end]
        if end > len(data) or zlib.crc32(payload, zlib.crc32(data[pos : pos + 13])) != crc:
            log.warning("event=wal_tail_discarded file=%s bytes=%d", path, len(data) - pos)
            return
        yield seq, kind, payload
        pos = end
    if pos < len(data):
        log.warning("event=wal_tail_discarded file=%s bytes=%d", path, len(data) - pos)


def _close_synced(fd: int) -> None:
    """Close a segment, its data on disk first (an error here only means more to replay, never less)."""
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make a new segment's directory entry durable too."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
