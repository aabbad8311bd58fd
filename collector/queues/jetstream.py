"""NATS JetStream: stream and consumer info through the JetStream API, on a short-lived connection."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.client import Client

from collector.queues.sample import PollError, QueueSample, utc_now
from triage.settings import Queue

SYSTEM = "nats"
_API = "$JS.API"


def poll(config: Queue) -> QueueSample:
    """One sample of the configured stream (and consumer); raises on any failure.

    nats-py is asyncio-only: this runs its own event loop, so call it from a worker thread.
    """
    return asyncio.run(asyncio.wait_for(_poll(config), timeout=config.timeout * 2))


async def _connect(config: Queue) -> Client:
    """A connection that tries the server once, failing with the socket's own error."""
    seen: list[Exception] = []

    async def remember(exc: Exception) -> None:  # nats-py reports the cause here, not in what it raises
        seen.append(exc)

    try:
        return await nats.connect(
            config.url or "",
            connect_timeout=config.timeout,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=remember,
        )
    except Exception as exc:
        cause = seen[-1] if seen else exc
        raise PollError(f"cannot connect: {type(cause).__name__}: {cause or repr(cause)}") from exc


async def _poll(config: Queue) -> QueueSample:
    client = await _connect(config)
    try:
        stream = await _request(client, f"STREAM.INFO.{config.stream}", None, config)
        if not config.consumer:
            return _from_stream(config, stream)
        consumer = await _request(client, f"CONSUMER.INFO.{config.stream}.{config.consumer}", None, config)
        return await _from_consumer(client, config, stream, consumer)
    finally:
        await client.close()


async def _request(client: Client, subject: str, body: dict[str, Any] | None, config: Queue) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    reply = await client.request(f"{_API}.{subject}", payload, timeout=config.timeout)
    data: dict[str, Any] = json.loads(reply.data)
    if "error" in data:
        err = data["error"]
        raise PollError(f"JetStream {subject}: {err.get('description', err)} (code {err.get('code')})")
    return data


def _timestamp(text: str | None) -> datetime | None:
    """RFC 3339 with nanoseconds, as the NATS server writes it."""
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    value = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return value.replace(microsecond=int((frac + "000000")[:6])) if frac else value


def _age(at: datetime | None) -> float | None:
    return max(0.0, (utc_now() - at).total_seconds()) if at else None


def _from_stream(config: Queue, stream: dict[str, Any]) -> QueueSample:
    # Without a consumer the backlog is what the stream holds: right for work-queue streams only.
    state = stream["state"]
    messages = int(state.get("messages", 0))
    return QueueSample(
        queue=config.name,
        system=SYSTEM,
        time=utc_now(),
        backlog=messages,
        consumers=int(state.get("consumer_count", 0)),
        oldest_age_seconds=_age(_timestamp(state.get("first_ts"))) if messages else 0.0,
        in_total=float(state.get("last_seq", 0)),
        source=config.name,
        destination=config.stream or "",
    )


def _consumers(consumer: dict[str, Any]) -> int:
    """Clients bound to the consumer: a bound push consumer, or pull requests waiting on it."""
    if consumer.get("config", {}).get("deliver_subject"):
        return 1 if consumer.get("push_bound") else 0
    return int(consumer.get("num_waiting") or 0)


async def _from_consumer(
    client: Client, config: Queue, stream: dict[str, Any], consumer: dict[str, Any]
) -> QueueSample:
    pending = int(consumer.get("num_pending") or 0)
    unacked = int(consumer.get("num_ack_pending") or 0)
    age = 0.0 if pending + unacked == 0 else None
    if age is None:
        # The oldest unprocessed message is the first one past the ack floor that the consumer wants.
        first = int(consumer.get("ack_floor", {}).get("stream_seq", 0)) + 1
        subject = consumer.get("config", {}).get("filter_subject") or ">"
        try:
            message = await _request(
                client, f"STREAM.MSG.GET.{config.stream}", {"seq": first, "next_by_subj": subject}, config
            )
        except PollError:  # purged or expired since the consumer info: no age this time
            message = {}
        age = _age(_timestamp(message.get("message", {}).get("time")))
    return QueueSample(
        queue=config.name,
        system=SYSTEM,
        time=utc_now(),
        backlog=pending + unacked,
        unacked=unacked,
        consumers=_consumers(consumer),
        oldest_age_seconds=age,
        in_total=float(stream["state"].get("last_seq", 0)),
        out_total=float(consumer.get("delivered", {}).get("stream_seq", 0)),
        source=config.name,
        destination=config.stream or "",
        consumer_group=config.consumer or "",
    )
