"""RabbitMQ: AMQP passive declare (ready messages, consumers), or the management HTTP API when set."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pika

from collector.queues.sample import RATE_FROM_BROKER, PollError, QueueSample, safe_url, utc_now
from triage.settings import Queue

SYSTEM = "rabbitmq"


def poll(config: Queue) -> QueueSample:
    """One sample of the configured queue; raises on any broker or network failure."""
    if config.management_url:
        return _poll_management(config)
    return _poll_amqp(config)


def _poll_amqp(config: Queue) -> QueueSample:
    params = pika.URLParameters(config.url or "")
    params.socket_timeout = config.timeout
    params.stack_timeout = config.timeout
    params.blocked_connection_timeout = config.timeout
    params.connection_attempts = 1
    params.heartbeat = 0
    connection = pika.BlockingConnection(params)
    try:
        declared = connection.channel().queue_declare(config.queue or "", passive=True)
    finally:
        if connection.is_open:
            connection.close()
    # AMQP tells only ready messages (not unacked ones) and consumers; rates come from the backlog.
    return QueueSample(
        queue=config.name,
        system=SYSTEM,
        time=utc_now(),
        backlog=int(declared.method.message_count),
        consumers=int(declared.method.consumer_count),
        source=config.name,
        destination=config.queue or "",
    )


def _credentials(config: Queue) -> tuple[str, str]:
    for url in (config.management_url, config.url):
        parts = urlsplit(url or "")
        if parts.username:
            return unquote(parts.username), unquote(parts.password or "")
    return "guest", "guest"


def _vhost(config: Queue) -> str:
    path = urlsplit(config.url or "").path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _management_base(config: Queue) -> str:
    parts = urlsplit(config.management_url or "")
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    base = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
    return base if base.endswith("/api") else f"{base}/api"


def _poll_management(config: Queue) -> QueueSample:
    vhost, queue = quote(_vhost(config), safe=""), quote(config.queue or "", safe="")
    url = f"{_management_base(config)}/queues/{vhost}/{queue}"
    response = httpx.get(url, auth=_credentials(config), timeout=config.timeout)
    if response.status_code == 404:
        raise PollError(f"queue {config.queue!r} not found in vhost {_vhost(config)!r} at {safe_url(url)}")
    response.raise_for_status()
    return from_management(config, response.json())


def _stat(stats: dict[str, Any], key: str) -> float | None:
    value = stats.get(key)
    return float(value) if isinstance(value, int | float) else None


def _rate(stats: dict[str, Any], key: str) -> float | None:
    details = stats.get(f"{key}_details")
    return _stat(details, "rate") if isinstance(details, dict) else None


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def from_management(config: Queue, body: dict[str, Any]) -> QueueSample:
    """A sample from a management API queue object (GET /api/queues/{vhost}/{name})."""
    stats = body.get("message_stats") or {}
    consumed = ("ack", "deliver_no_ack", "get_no_ack")  # what leaves the queue for good
    rate_in, rate_out = _rate(stats, "publish"), _sum([_rate(stats, k) for k in consumed])
    head = body.get("head_message_timestamp")  # set only when publishers set the timestamp property
    age = max(0.0, time.time() - float(head)) if isinstance(head, int | float) and head > 0 else None
    return QueueSample(
        queue=config.name,
        system=SYSTEM,
        time=utc_now(),
        backlog=int(body.get("messages") or 0),
        unacked=int(body.get("messages_unacknowledged") or 0),
        consumers=int(body.get("consumers") or 0),
        oldest_age_seconds=age,
        rate_in=rate_in,
        rate_out=rate_out,
        in_total=_stat(stats, "publish"),
        out_total=_sum([_stat(stats, k) for k in consumed]),
        rate_source=RATE_FROM_BROKER if rate_in is not None and rate_out is not None else "",
        source=config.name,
        destination=config.queue or "",
    )
