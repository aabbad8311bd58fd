"""Tail positions persisted in the store (table log_tail_positions, migration 0005)."""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass

from triage.store import Store

TABLE = "log_tail_positions"
COLUMNS = ("Source", "Host", "FileKey", "Path", "Fingerprint", "Offset", "Version")
FINGERPRINT_BYTES = 1024

_LOAD = f"""
SELECT FileKey, argMax(Path, Version), argMax(Fingerprint, Version), argMax(Offset, Version)
FROM {TABLE}
WHERE Source = {{source:String}} AND Host = {{host:String}}
GROUP BY FileKey
"""


@dataclass
class Position:
    """How far one file has been read: the byte after the last line handed to the receiver."""

    key: str
    path: str
    fingerprint: str
    offset: int


def fingerprint(fd: int, length: int = FINGERPRINT_BYTES) -> str:
    """`n:hash` of the file's first n (at most `length`) bytes; empty for an empty file."""
    head = os.pread(fd, length, 0)
    if not head:
        return ""
    return f"{len(head)}:{hashlib.sha1(head, usedforsecurity=False).hexdigest()[:20]}"


def fingerprint_matches(fd: int, expected: str) -> bool:
    """Whether the file still starts with the bytes `expected` was taken from."""
    if not expected:
        return True
    length = int(expected.split(":", 1)[0])
    return fingerprint(fd, length) == expected


class PositionStore:
    """Reads and writes one collector host's positions; safe to call from worker threads."""

    _versions = itertools.count(time.time_ns())
    _lock = threading.Lock()

    def __init__(self, store: Store, host: str | None = None) -> None:
        self.store = store
        self.host = host or socket.gethostname()

    def load(self, source: str) -> dict[str, Position]:
        """The last saved position of every file of the source, by file key (device:inode)."""
        rows = self.store.query(_LOAD, {"source": source, "host": self.host}).result_rows
        return {r[0]: Position(r[0], r[1], r[2], int(r[3])) for r in rows}

    def save(self, source: str, positions: list[Position]) -> None:
        if not positions:
            return
        with self._lock:  # versions strictly increase across threads, so the newest row wins
            rows = [
                [source, self.host, p.key, p.path, p.fingerprint, p.offset, next(self._versions)] for p in positions
            ]
        self.store.insert(TABLE, rows, COLUMNS)
