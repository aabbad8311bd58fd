"""The queues between the simulated systems: real RabbitMQ queues when the broker answers, else the
simulator's own in-memory queues (reported to Triage through the push API).

Both deliver to a consumer only while it runs (a stopped consumer is a fault), carry the trace
context in message headers, and redeliver a message when its handler asks (a duplicate delivery).
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pika
import pika.exceptions

log = logging.getLogger("triage.simulator")
_EXPIRES_MS = 6 * 3600 * 1000  # a run killed before it deletes its queues leaves them for 6 h at most


@dataclass
class Delivery:
    """One message handed to a consumer."""

    queue: str
    destination: str
    message_id: str
    headers: dict[str, str]
    body: dict[str, str]
    redelivered: bool = False


Handler = Callable[[Delivery], bool]  # returns True to have the message delivered once more


class Broker(Protocol):
    system: str
    description: str

    def destination(self, queue: str) -> str: ...
    def publish(self, queue: str, message_id: str, headers: dict[str, str], body: dict[str, str]) -> None: ...
    def set_consuming(self, queue: str, running: bool) -> None: ...
    def pump(self, timeout: float) -> None: ...
    def samples(self) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


@dataclass
class _Held:
    delivery: Delivery
    enqueued: float


@dataclass
class _MemoryQueue:
    destination: str
    items: collections.deque[_Held] = field(default_factory=lambda: collections.deque())
    # As on RabbitMQ, nothing consumes until `set_consuming`: the queue nobody consumes (parked
    # invoices) keeps its messages, and Triage sees them waiting there.
    running: bool = False
    published: int = 0
    consumed: int = 0


class MemoryBroker:
    """In-process queues; their backlog, consumers and rates go to Triage as pushed samples."""

    system = "simulator"

    def __init__(self, destinations: dict[str, str], handler: Handler) -> None:
        self.description = "in-memory queues (RabbitMQ not reachable), reported via POST /api/v1/queues/samples"
        self._queues = {name: _MemoryQueue(dest) for name, dest in destinations.items()}
        self._handler = handler
        self._last_sample: tuple[float, dict[str, tuple[int, int]]] | None = None

    def destination(self, queue: str) -> str:
        return self._queues[queue].destination

    def publish(self, queue: str, message_id: str, headers: dict[str, str], body: dict[str, str]) -> None:
        q = self._queues[queue]
        q.items.append(_Held(Delivery(queue, q.destination, message_id, headers, body), time.time()))
        q.published += 1

    def set_consuming(self, queue: str, running: bool) -> None:
        self._queues[queue].running = running

    def pump(self, timeout: float) -> None:
        for q in self._queues.values():
            if not q.running or not q.items:
                continue
            batch = list(q.items)
            q.items.clear()
            again = []
            for held in batch:
                q.consumed += 1
                if self._handler(held.delivery) and not held.delivery.redelivered:
                    held.delivery.redelivered = True
                    again.append(held)
            q.items.extendleft(reversed(again))
        if timeout > 0:
            time.sleep(timeout)

    def samples(self) -> list[dict[str, Any]]:
        now = time.time()
        counts = {name: (q.published, q.consumed) for name, q in self._queues.items()}
        previous = self._last_sample
        self._last_sample = (now, counts)
        out = []
        for name, q in self._queues.items():
            sample: dict[str, Any] = {
                "name": name,
                "system": self.system,
                "destination": q.destination,
                "backlog": len(q.items),
                "consumers": 1 if q.running else 0,
                "oldest_age_seconds": round(now - q.items[0].enqueued, 3) if q.items else 0.0,
            }
            if previous is not None and now > previous[0]:
                published, consumed = previous[1][name]
                sample["rate_in"] = round((q.published - published) / (now - previous[0]), 3)
                sample["rate_out"] = round((q.consumed - consumed) / (now - previous[0]), 3)
            out.append(sample)
        return out

    def close(self) -> None:
        for q in self._queues.values():
            q.items.clear()


class RabbitBroker:
    """Real RabbitMQ queues named for this run; deleted again by `close`."""

    system = "rabbitmq"

    def __init__(self, url: str, destinations: dict[str, str], handler: Handler) -> None:
        params = pika.URLParameters(url)
        params.socket_timeout = 3
        params.connection_attempts = 1
        self.description = f"RabbitMQ at {params.host}:{params.port}, queues {', '.join(destinations.values())}"
        self._connection = pika.BlockingConnection(params)
        self._channel = self._connection.channel()
        self._channel.basic_qos(prefetch_count=100)
        self._destinations = dict(destinations)
        self._names = {dest: name for name, dest in destinations.items()}
        self._handler = handler
        self._consumers: dict[str, str] = {}
        for dest in destinations.values():
            self._channel.queue_declare(dest, durable=False, arguments={"x-expires": _EXPIRES_MS})

    def destination(self, queue: str) -> str:
        return self._destinations[queue]

    def publish(self, queue: str, message_id: str, headers: dict[str, str], body: dict[str, str]) -> None:
        properties = pika.BasicProperties(
            headers=headers,
            message_id=message_id,
            content_type="application/json",
            timestamp=int(time.time()),
        )
        self._channel.basic_publish("", self._destinations[queue], json.dumps(body).encode(), properties)

    def set_consuming(self, queue: str, running: bool) -> None:
        tag = self._consumers.get(queue)
        if running and tag is None:
            dest = self._destinations[queue]
            self._consumers[queue] = self._channel.basic_consume(dest, self._on_message)
        elif not running and tag is not None:
            self._channel.basic_cancel(tag)
            del self._consumers[queue]

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        delivery = Delivery(
            queue=self._names[method.routing_key],
            destination=method.routing_key,
            message_id=properties.message_id or "",
            headers={k: str(v) for k, v in (properties.headers or {}).items()},
            body=json.loads(body),
            redelivered=bool(method.redelivered),
        )
        if self._handler(delivery) and not delivery.redelivered:
            channel.basic_nack(method.delivery_tag, requeue=True)
        else:
            channel.basic_ack(method.delivery_tag)

    def pump(self, timeout: float) -> None:
        self._connection.process_data_events(time_limit=max(timeout, 0))

    def samples(self) -> list[dict[str, Any]]:
        return []  # Triage polls the real queues itself

    def close(self) -> None:
        """Stop consuming and disconnect (the queues stay until `delete_queues`: Triage still polls them)."""
        try:
            for tag in list(self._consumers.values()):
                self._channel.basic_cancel(tag)
            self._connection.close()
        except pika.exceptions.AMQPError as exc:
            log.warning("event=rabbitmq_disconnect_failed error=%r", exc)


def declare_queues(url: str, names: list[str]) -> None:
    """Create the run's queues (before Triage starts polling them)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_declare(name, durable=False, arguments={"x-expires": _EXPIRES_MS})
    finally:
        connection.close()


def delete_queues(url: str, names: list[str]) -> None:
    """Delete the run's queues; a failure is logged with the names left behind (they expire in 6 h)."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            for name in names:
                channel.queue_delete(name)
        finally:
            connection.close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        log.warning("event=rabbitmq_cleanup_failed error=%r queues=%s", exc, ",".join(names))


def rabbit_reachable(url: str, timeout: float = 1.5) -> bool:
    """Whether a RabbitMQ broker accepts a connection at `url`."""
    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except (pika.exceptions.AMQPError, OSError):
        return False
    return True
