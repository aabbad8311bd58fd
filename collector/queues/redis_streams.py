"""Redis Streams: a consumer group's lag, pending entries and progress (XINFO GROUPS, XPENDING)."""

from __future__ import annotations

import time
from typing import Any

import redis

from collector.queues.sample import PollError, QueueSample, utc_now
from triage.settings import Queue

SYSTEM = "redis"
_COUNT_CAP = 10_000  # when Redis cannot say the lag, count at most this many undelivered entries
_YEAR_2000_MS = 946_684_800_000


def poll(config: Queue) -> QueueSample:
    """One sample of the configured stream's consumer group; raises on any failure."""
    client = redis.Redis.from_url(
        config.url or "",
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        decode_responses=True,
    )
    try:
        return _sample(client, config)
    finally:
        client.close()


def _entry_age(entry_id: str | None) -> float | None:
    """Seconds since an entry was added, read from its id (milliseconds, when Redis assigned it)."""
    if not entry_id:
        return None
    ms = int(entry_id.split("-", 1)[0])
    if ms < _YEAR_2000_MS:  # an explicit, non-time id: no age to tell
        return None
    return max(0.0, time.time() - ms / 1000)


def _group(client: redis.Redis, config: Queue) -> dict[str, Any] | None:
    stream = config.stream or ""
    groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    if config.group:
        found = next((g for g in groups if g["name"] == config.group), None)
        if found is None:
            names = ", ".join(g["name"] for g in groups) or "none"
            raise PollError(f"stream {stream!r} has no consumer group {config.group!r} (groups: {names})")
        return found
    if len(groups) > 1:
        names = ", ".join(g["name"] for g in groups)
        raise PollError(f"stream {stream!r} has several consumer groups ({names}); set `group`")
    return groups[0] if groups else None


def _undelivered(client: redis.Redis, stream: str, group: dict[str, Any]) -> int:
    if group.get("lag") is not None:
        return int(group["lag"])
    # Redis leaves lag empty after deletions or XSETID; count what is past the last delivered id.
    after = f"({group['last-delivered-id']}"
    return len(client.xrange(stream, min=after, max="+", count=_COUNT_CAP) or [])


def _oldest_age(client: redis.Redis, stream: str, group: dict[str, Any], undelivered: int) -> float | None:
    if int(group.get("pending") or 0):
        summary = client.xpending(stream, group["name"])
        return _entry_age(summary.get("min"))
    if undelivered:
        after = f"({group['last-delivered-id']}"
        first = client.xrange(stream, min=after, max="+", count=1)
        return _entry_age(str(first[0][0])) if first else None
    return 0.0


def _sample(client: redis.Redis, config: Queue) -> QueueSample:
    stream = config.stream or ""
    if not client.exists(stream):
        raise PollError(f"stream {stream!r} does not exist; check `stream` (producers create it on first XADD)")
    info: dict[str, Any] = client.xinfo_stream(stream)
    added = info.get("entries-added")
    group = _group(client, config)
    if group is None:  # nobody has ever consumed: everything in the stream waits
        length = int(info.get("length", 0))
        return QueueSample(
            queue=config.name,
            system=SYSTEM,
            time=utc_now(),
            backlog=length,
            consumers=0,
            oldest_age_seconds=_entry_age((info.get("first-entry") or [None])[0]) if length else 0.0,
            in_total=float(added) if added is not None else None,
            source=config.name,
            destination=stream,
        )
    undelivered = _undelivered(client, stream, group)
    pending = int(group.get("pending") or 0)
    read = group.get("entries-read")
    return QueueSample(
        queue=config.name,
        system=SYSTEM,
        time=utc_now(),
        backlog=undelivered + pending,
        unacked=pending,
        consumers=int(group.get("consumers") or 0),
        oldest_age_seconds=_oldest_age(client, stream, group, undelivered),
        in_total=float(added) if added is not None else None,
        out_total=float(read) if read is not None else None,
        source=config.name,
        destination=stream,
        consumer_group=str(group["name"]),
    )
