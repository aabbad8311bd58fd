"""Which rows a correlation cycle reads: what arrived after the watermark, and what became visible late.

An insert can become visible a little after its ingest stamp (a server under load, a replica catching
up), so a cycle that read up to `hi` may have missed rows stamped before `hi`. Re-reading an overlap
every cycle finds them but makes every cycle pay for data it has seen. Instead a correlator counts the
rows of each window just before it stitches them (what it counted, it read), and once per `overlap`
seconds a sweep counts the same windows again, back to `overlap` before the watermark the previous
sweep started from: only when a window holds more rows than were read does the sweep read again from
there. A late row is then stitched at most `overlap` seconds after it became visible, as long as it
became visible within `overlap` of its stamp, and a sweep that finds nothing costs one count.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from triage.store import Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROWS = """
SELECT (SELECT count() FROM otel_traces
        WHERE TriageIngestedAt > {lo:DateTime64(3)} AND TriageIngestedAt <= {hi:DateTime64(3)})
     + (SELECT count() FROM otel_logs
        WHERE TriageIngestedAt > {lo:DateTime64(3)} AND TriageIngestedAt <= {hi:DateTime64(3)})
"""


def to_millisecond(t: datetime) -> datetime:
    """`t` as the watermark stores it (DateTime64(3)), so that one window ends where the next begins."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Read:
    """Rows ingested in (lo, hi] that a cycle read: `rows` were visible just before it stitched them."""

    lo: datetime
    hi: datetime
    rows: int


class ReadWindows:
    """One correlator's record of the windows it read, and the choice of the next window's start."""

    def __init__(self, store: Store, overlap: float) -> None:
        self.store = store
        self.overlap = timedelta(seconds=overlap)
        self._reads: deque[Read] = deque()
        self._swept_at: float | None = None  # monotonic time of the last sweep
        self._swept_wm: datetime | None = None  # the watermark it started from
        self._pending: Read | None = None
        self._sweeping = False
        self._began = 0.0
        self._wm = EPOCH

    def start(self, wm: datetime, hi: datetime) -> datetime:
        """Where the cycle reading up to `hi` from watermark `wm` starts; counts the rows it will read."""
        self._began = time.monotonic()
        last = self._swept_at
        self._sweeping = wm <= EPOCH or last is None or self._began - last >= self.overlap.total_seconds()
        if wm <= EPOCH:
            lo = EPOCH
        elif not self._sweeping:
            lo = wm
        else:
            since = min(self._swept_wm or wm, wm) - self.overlap
            lo = self._late_since(since, wm)
        self._wm = wm
        self._pending = Read(lo, hi, self._rows(lo, hi))
        return lo

    def done(self) -> None:
        """The cycle that start() opened wrote its verdicts: what it read is recorded."""
        read, self._pending = self._pending, None
        if read is None:
            return
        while self._reads and self._reads[-1].lo >= read.lo:  # re-read by this one
            self._reads.pop()
        if self._reads and self._reads[-1].hi != read.lo:  # not contiguous (the watermark moved elsewhere)
            self._reads.clear()
        self._reads.append(read)
        if self._sweeping:
            self._swept_at, self._swept_wm = self._began, self._wm
        keep_from = (self._swept_wm or read.lo) - 2 * self.overlap
        while len(self._reads) > 1 and self._reads[0].hi < keep_from:
            self._reads.popleft()

    def _late_since(self, since: datetime, wm: datetime) -> datetime:
        """The start of the earliest recorded window from `since` on that now holds more rows than were
        read, or `wm` when none does; `since` itself when the record does not reach back that far."""
        reads = [r for r in self._reads if r.hi > since]
        if not reads or reads[0].lo > since or reads[-1].hi != wm:
            return since
        start = reads[0].lo
        if self._rows(start, wm) > sum(r.rows for r in reads):
            return start
        return wm

    def _rows(self, lo: datetime, hi: datetime) -> int:
        return int(self.store.command(_ROWS, {"lo": lo, "hi": hi}))
