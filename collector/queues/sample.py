"""A queue sample: what one poll (or one pushed report) says about one queue at one moment."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

# Where rate_in/rate_out came from, most to least exact.
RATE_FROM_BROKER = "broker"  # the broker computed them (RabbitMQ management message_stats)
RATE_FROM_COUNTERS = "counters"  # deltas of cumulative counters between two polls
RATE_FROM_BACKLOG = "backlog"  # net change of the backlog between two polls: lower bounds


class PollError(Exception):
    """A poll failed for a reason we can state fully (queue missing, group unknown...)."""


@dataclass(frozen=True, slots=True)
class QueueSample:
    """One observation of one queue; `error` is set (and the numbers are None) when the poll failed."""

    queue: str
    system: str
    time: datetime
    backlog: int | None = None
    consumers: int | None = None
    unacked: int | None = None
    oldest_age_seconds: float | None = None
    rate_in: float | None = None
    rate_out: float | None = None
    in_total: float | None = None
    out_total: float | None = None
    rate_source: str = ""
    source: str = ""
    destination: str = ""
    consumer_group: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.backlog is not None


def utc_now() -> datetime:
    return datetime.now(UTC)


def safe_url(url: str | None) -> str:
    """The URL without its password, for error messages and logs."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def _counter_rate(current: float | None, previous: float | None, seconds: float) -> float | None:
    if current is None or previous is None or current < previous:  # absent, or reset by a restart
        return None
    return (current - previous) / seconds


def with_rates(current: QueueSample, previous: QueueSample | None) -> QueueSample:
    """`current` with rate_in/rate_out filled from the previous sample of the same queue.

    Rates the broker gave are kept. Otherwise cumulative counters give exact rates, and one known
    counter plus the backlog change gives the other (consumed = published - growth of the backlog).
    With no counters at all, the backlog's net change gives lower bounds (RATE_FROM_BACKLOG).
    """
    if not current.ok or previous is None or not previous.ok:
        return current
    seconds = (current.time - previous.time).total_seconds()
    if seconds <= 0:
        return current
    rate_in, rate_out, source = current.rate_in, current.rate_out, current.rate_source
    if rate_in is not None and rate_out is not None:
        return current
    growth = (current.backlog or 0) - (previous.backlog or 0)
    if rate_in is None:
        rate_in = _counter_rate(current.in_total, previous.in_total, seconds)
    if rate_out is None:
        rate_out = _counter_rate(current.out_total, previous.out_total, seconds)
    if rate_in is not None and rate_out is None:
        rate_out = max(0.0, rate_in - growth / seconds)
    elif rate_out is not None and rate_in is None:
        rate_in = max(0.0, rate_out + growth / seconds)
    if rate_in is not None and rate_out is not None:
        source = source or RATE_FROM_COUNTERS
    else:
        rate_in, rate_out = max(growth, 0) / seconds, max(-growth, 0) / seconds
        source = RATE_FROM_BACKLOG
    return dataclasses.replace(current, rate_in=rate_in, rate_out=rate_out, rate_source=source)


def failed(queue: str, system: str, error: str, *, source: str = "", destination: str = "") -> QueueSample:
    """The sample a failed poll leaves: no numbers, the error text."""
    return QueueSample(queue=queue, system=system, time=utc_now(), source=source, destination=destination, error=error)
