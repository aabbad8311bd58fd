"""Following log files named by `log_sources[].path` (a glob): rotation-safe, restart-safe.

Files are tracked by identity (device:inode), not by name, and kept open between polls:
- rename + recreate: the renamed file is drained to its end before it is let go (two polls after it
  stops matching the glob), and the new file under the old name is read from its first byte;
- copytruncate: a file that shrinks below the read offset, or whose first bytes change, is read
  again from byte 0 (lines written between the copy and the truncation are lost, as with any tailer);
- restart: positions (byte after the last line handed to the receiver) are saved in the store after
  every accepted batch and looked up by identity and fingerprint at start. A multi-line entry still
  collecting lines, or an unterminated last line, is not counted as read: a restart reads it again.
When the receiver refuses a batch (buffer full) the file is rewound and read again at the next poll.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Sequence

from collector.logs import metrics
from collector.logs.parse import EntryAssembler, LineParser, LogEntry
from collector.logs.positions import (
    FINGERPRINT_BYTES,
    Position,
    PositionStore,
    fingerprint,
    fingerprint_matches,
)
from collector.logs.records import build_request, count_records
from collector.receiver import Receiver
from triage.errors import Overloaded
from triage.settings import LogSource

log = logging.getLogger("triage.collector")

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst", ".lz4")
READ_CHUNK = 1 << 20
MAX_READ_PER_POLL = 16 << 20  # per file; the rest is read at the next poll
MAX_LINE_BYTES = 1 << 20  # an unterminated line longer than this is cut into a record of its own
MAX_RECORDS_PER_REQUEST = 10_000
POLLS_BEFORE_RELEASE = 2  # a file gone from the glob is drained and closed after this many polls


class TailedFile:
    """One open file: the read offset, an unterminated last line, the entry still collecting lines."""

    def __init__(self, key: str, path: str, fd: int, offset: int, parser: LineParser, now: float) -> None:
        self.key = key
        self.path = path
        self.fd = fd
        self.offset = offset
        self.buffer = b""
        self.assembler = EntryAssembler(parser)
        self.fingerprint = fingerprint(fd)
        self.last_data = now
        self.missing_polls = 0
        self.saved: tuple[int, str] | None = None

    @property
    def commit_offset(self) -> int:
        """The byte after the last line whose entry is complete: where a restart resumes."""
        pending = self.assembler.pending
        if pending is not None and pending.offset >= 0:
            return pending.offset
        return self.offset - len(self.buffer)

    def position(self) -> Position:
        return Position(self.key, self.path, self.fingerprint, self.commit_offset)

    def read(self, now: float, flush_after: float, final: bool) -> list[LogEntry]:
        """Complete entries from the bytes appended since the last read."""
        entries = self._restart_if_rewritten()
        read = 0
        while read < MAX_READ_PER_POLL:
            chunk = os.pread(self.fd, READ_CHUNK, self.offset)
            if not chunk:
                break
            read += len(chunk)
            self.last_data = now
            start = self.offset - len(self.buffer)
            *lines, self.buffer = (self.buffer + chunk).split(b"\n")
            self.offset += len(chunk)
            for raw in lines:
                entries.extend(self._feed(raw, start))
                start += len(raw) + 1
            if len(self.buffer) > MAX_LINE_BYTES:
                entries.extend(self._feed(self.buffer, start))
                self.buffer = b""
        if read and not self.fingerprint.startswith(f"{FINGERPRINT_BYTES}:"):
            self.fingerprint = fingerprint(self.fd)
        if final or now - self.last_data >= flush_after:
            # Idle: the unterminated last line is a whole line, and nothing more joins the pending entry.
            if self.buffer:
                entries.extend(self._feed(self.buffer, self.offset - len(self.buffer)))
                self.buffer = b""
            entries.extend(self.assembler.flush())
        return entries

    def rewind(self, offset: int) -> None:
        """Forget what was read past `offset`; it is read again at the next poll."""
        self.offset = max(offset, 0)
        self.buffer = b""
        self.assembler.pending = None

    def close(self) -> None:
        os.close(self.fd)

    def _feed(self, raw: bytes, offset: int) -> list[LogEntry]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return self.assembler.feed(raw.decode("utf-8", "replace"), offset)

    def _restart_if_rewritten(self) -> list[LogEntry]:
        size = os.fstat(self.fd).st_size
        if size >= self.offset and fingerprint_matches(self.fd, self.fingerprint):
            return []
        # copytruncate, or rewritten in place: what was read stands; the new content starts at byte 0.
        log.info("event=log_file_truncated path=%s size=%d offset=%d", self.path, size, self.offset)
        entries: list[LogEntry] = []
        if self.buffer:
            entries.extend(self._feed(self.buffer, -1))
        entries.extend(self.assembler.flush())
        for entry in entries:
            entry.offset = -1  # old content: never a place to rewind to
        self.offset, self.buffer = 0, b""
        self.fingerprint = fingerprint(self.fd)
        return entries


def discover(pattern: str) -> dict[str, str]:
    """Regular, uncompressed files matching the glob, by identity (device:inode) → path."""
    found: dict[str, str] = {}
    for path in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
        if path.endswith(COMPRESSED_SUFFIXES):
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.setdefault(f"{st.st_dev}:{st.st_ino}", path)
    return found


class SourceTail:
    """The files of one log source."""

    def __init__(self, source: LogSource, receiver: Receiver, positions: PositionStore) -> None:
        assert source.path, "only sources with a path are tailed"
        self.source = source
        self.pattern = source.path
        self.receiver = receiver
        self.positions = positions
        self.parser = LineParser(source)
        self.files: dict[str, TailedFile] = {}
        self.saved: dict[str, Position] | None = None
        self.started = False
        self.next_due = 0.0
        self.last_problem = ""
        self.troubled = False  # a problem was reported during the current poll

    def poll(self, now: float) -> None:
        """Discover files, read what was appended, hand complete entries on, save positions."""
        if self.saved is None:
            self.saved = self.positions.load(self.source.name)
        matched = discover(self.pattern)
        for key, tailed in self.files.items():
            tailed.missing_polls = 0 if key in matched else tailed.missing_polls + 1
            tailed.path = matched.get(key, tailed.path)
        for key, path in matched.items():
            if key not in self.files:
                self._open(key, path, now)
        self.started = True
        changed: list[TailedFile] = []
        for tailed in list(self.files.values()):
            final = tailed.missing_polls >= POLLS_BEFORE_RELEASE
            if self._ship(tailed, tailed.read(now, self.source.flush_after, final)) and final:
                tailed.close()
                del self.files[tailed.key]
            if tailed.saved != (tailed.commit_offset, tailed.fingerprint):
                changed.append(tailed)
        self.positions.save(self.source.name, [t.position() for t in changed])
        for tailed in changed:
            tailed.saved = (tailed.commit_offset, tailed.fingerprint)
            self.saved[tailed.key] = tailed.position()
        metrics.TAIL_FILES.labels(self.source.name).set(len(self.files))

    def close(self) -> None:
        for tailed in self.files.values():
            tailed.close()
        self.files.clear()

    def _open(self, key: str, path: str, now: float) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return  # gone between the glob and the open: the next poll sees what replaced it
        st = os.fstat(fd)
        key = f"{st.st_dev}:{st.st_ino}"
        if key in self.files:
            os.close(fd)
            return
        offset, saved = 0, (self.saved or {}).get(key)
        if saved is not None and saved.offset <= st.st_size and fingerprint_matches(fd, saved.fingerprint):
            offset = saved.offset
        elif not self.started and self.source.start_at == "end":
            offset = st.st_size
        tailed = TailedFile(key, path, fd, offset, self.parser, now)
        if saved is not None and offset == saved.offset:
            tailed.saved = (saved.offset, saved.fingerprint)
        self.files[key] = tailed
        log.info("event=log_file_opened source=%s path=%s offset=%d", self.source.name, path, offset)

    def _ship(self, tailed: TailedFile, entries: Sequence[LogEntry]) -> bool:
        """Hand entries to the receiver; on refusal rewind the file to the first one not taken."""
        attributes = {"log.file.path": tailed.path, "log.file.name": os.path.basename(tailed.path)}
        for start in range(0, len(entries), MAX_RECORDS_PER_REQUEST):
            chunk = entries[start : start + MAX_RECORDS_PER_REQUEST]
            try:
                self.receiver.accept_message("logs", build_request(self.source, chunk, attributes), "file")
            except Overloaded as exc:
                tailed.rewind(chunk[0].offset)
                self.report(f"receiver refused lines, retrying at the next poll: {exc}", error=False)
                return False
            count_records(self.source, len(chunk), sum(1 for e in chunk if not e.parsed))
        return True

    def report(self, problem: str, error: bool = True) -> None:
        """Log a problem once per episode, not once per poll."""
        self.troubled = True
        if problem != self.last_problem:
            if error:
                log.exception("event=log_tail_failed source=%s path=%s", self.source.name, self.pattern)
            else:
                log.warning("event=log_tail_problem source=%s problem=%r", self.source.name, problem)
        self.last_problem = problem


class Tailer:
    """Every tailed source, polled from one worker thread at a time."""

    def __init__(self, sources: Sequence[LogSource], receiver: Receiver, positions: PositionStore) -> None:
        self.tails = [SourceTail(s, receiver, positions) for s in sources if s.path]
        self._lock = threading.Lock()
        self._closing = False

    def poll(self) -> float:
        """Poll the sources that are due; the seconds until the next one is."""
        with self._lock:
            if not self._closing:
                for tail in self.tails:
                    now = time.monotonic()
                    if now >= tail.next_due:
                        self._poll_one(tail, now)
                        tail.next_due = now + tail.source.poll_interval
            if self._closing:
                self._close_all()
                return 0.0
        return max(0.0, min((t.next_due for t in self.tails), default=1.0) - time.monotonic())

    def close_soon(self) -> None:
        """Close every file now, or when the poll in progress ends (never blocks)."""
        self._closing = True
        if self._lock.acquire(blocking=False):
            try:
                self._close_all()
            finally:
                self._lock.release()

    def _poll_one(self, tail: SourceTail, now: float) -> None:
        tail.troubled = False
        try:
            tail.poll(now)
        except Exception as exc:  # the store or the file system failed: retried at the next poll
            metrics.TAIL_ERRORS.labels(tail.source.name).inc()
            tail.report(repr(exc))
        if not tail.troubled and tail.last_problem:
            log.info("event=log_tail_recovered source=%s", tail.source.name)
            tail.last_problem = ""

    def _close_all(self) -> None:
        for tail in self.tails:
            tail.close()
