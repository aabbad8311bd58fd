"""A disk spool for accepted requests the store could not take: length-delimited records per file."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from collector.otlp import Signal

log = logging.getLogger("triage.collector")

_SIGNALS: tuple[Signal, ...] = ("traces", "logs", "metrics")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


class Spool:
    """Files of (signal, serialized OTLP request) records under one directory."""

    def __init__(self, directory: str | None) -> None:
        self.directory = Path(directory) if directory else Path(tempfile.gettempdir()) / "triage-spool"

    def write(self, records: Iterable[tuple[Signal, bytes]]) -> Path:
        """Write records to a new file atomically (tmp + rename) and fsync it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{time.time_ns()}.spool"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for signal, payload in records:
                fh.write(bytes([_SIGNALS.index(signal)]) + _varint(len(payload)) + payload)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(final)
        return final

    def drain(self) -> Iterator[tuple[Signal, bytes]]:
        """Yield every spooled record, oldest file first, deleting each file once read."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.spool")):
            data = path.read_bytes()
            pos = 0
            count = 0
            while pos < len(data):
                signal = _SIGNALS[data[pos]]
                length, pos = _read_varint(data, pos + 1)
                yield signal, data[pos : pos + length]
                pos += length
                count += 1
            log.info("event=spool_replayed file=%s requests=%d", path, count)
            path.unlink()
