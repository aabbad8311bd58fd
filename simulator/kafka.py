"""The estate's Kafka: topics the simulator keeps itself, seen by Triage only through a lag exporter.

Many estates run Kafka with nothing but an exporter watching it. The simulator plays that: each
topic is a log with one partition and one consumer group; messages wait there while the group's
consumer is stopped (a `consumer_stopped` fault); an HTTP endpoint serves what danielqsj's
kafka_exporter would (`kafka_consumergroup_lag`, offsets, members, in Prometheus text), and Triage's
`prometheus` queue entry scrapes it like any exporter. Spans carry `messaging.system: kafka` and the
topic as `messaging.destination.name`, and no message id (as many Kafka clients send them).
"""

from __future__ import annotations

import collections
import http.server
import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from simulator.brokers import Broker, Delivery, Handler
from triage.errors import ConfigError
from triage.settings import Queue

log = logging.getLogger("triage.simulator")


@dataclass
class _Topic:
    topic: str
    group: str
    log: collections.deque[Delivery] = field(default_factory=lambda: collections.deque())
    end_offset: int = 0  # messages ever produced
    committed: int = 0  # messages the group has consumed
    running: bool = True


class KafkaTopics:
    """In-memory topics with a kafka_exporter endpoint; a Broker for the queues it holds."""

    system = "kafka"

    def __init__(self, entries: dict[str, Queue], handler: Handler) -> None:
        """`entries`: queue name → its `prometheus` entry, whose `queue` is the topic and `group` the
        consumer group; the endpoint listens where the entries' url says (a loopback address)."""
        self._topics = {name: _Topic(q.queue or name, q.group or name) for name, q in entries.items()}
        self._handler = handler
        self._lock = threading.Lock()
        urls = {q.url for q in entries.values()}
        if len(urls) != 1:
            raise ConfigError(f"the demo's Kafka topics need one exporter url, got {sorted(u or '' for u in urls)}")
        url = urlparse(urls.pop() or "")
        if url.hostname not in ("127.0.0.1", "localhost") or not url.port:
            raise ConfigError(f"the demo serves its Kafka exporter on loopback; {url.geturl()!r} is not 127.0.0.1:PORT")
        self.path = url.path or "/metrics"
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", url.port), self._request_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kafka-exporter", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{url.port}{self.path}"
        self.description = f"Kafka topics {', '.join(t.topic for t in self._topics.values())} (exporter at {self.url})"

    def _request_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        topics = self

        class ExporterHandler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                if self.path.split("?")[0] != topics.path:
                    self.send_error(404, f"the exporter serves {topics.path}")
                    return
                body = topics.metrics_text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the standard library's name)
                return

        return ExporterHandler

    def metrics_text(self) -> str:
        """What kafka_exporter serves for these topics and groups (Prometheus text format 0.0.4)."""
        with self._lock:
            topics = list(self._topics.values())
            rows = [(t.topic, t.group, t.end_offset, t.committed, t.running) for t in topics]
        lines = [
            "# HELP kafka_consumergroup_lag Current Approximate Lag of a ConsumerGroup at Topic/Partition",
            "# TYPE kafka_consumergroup_lag gauge",
        ]
        lines += [
            f'kafka_consumergroup_lag{{consumergroup="{g}",partition="0",topic="{t}"}} {e - c}'
            for t, g, e, c, _ in rows
        ]
        lines += ["# HELP kafka_consumergroup_current_offset Current Offset of a ConsumerGroup at Topic/Partition"]
        lines += ["# TYPE kafka_consumergroup_current_offset gauge"]
        lines += [
            f'kafka_consumergroup_current_offset{{consumergroup="{g}",partition="0",topic="{t}"}} {c}'
            for t, g, _, c, _ in rows
        ]
        lines += ["# HELP kafka_consumergroup_members Amount of members in a consumer group"]
        lines += ["# TYPE kafka_consumergroup_members gauge"]
        lines += [f'kafka_consumergroup_members{{consumergroup="{g}"}} {int(r)}' for _, g, _, _, r in rows]
        lines += ["# HELP kafka_topic_partition_current_offset Current Offset of a Broker at Topic/Partition"]
        lines += ["# TYPE kafka_topic_partition_current_offset gauge"]
        lines += [f'kafka_topic_partition_current_offset{{partition="0",topic="{t}"}} {e}' for t, _, e, _, _ in rows]
        return "\n".join(lines) + "\n"

    # -- Broker -------------------------------------------------------------------------------

    def destination(self, queue: str) -> str:
        return self._topics[queue].topic

    def publish(self, queue: str, message_id: str, headers: dict[str, str], body: dict[str, str]) -> None:
        with self._lock:
            t = self._topics[queue]
            t.log.append(Delivery(queue, t.topic, message_id, headers, body))
            t.end_offset += 1

    def set_consuming(self, queue: str, running: bool) -> None:
        with self._lock:
            self._topics[queue].running = running

    def pump(self, timeout: float) -> None:
        for t in self._topics.values():
            with self._lock:
                if not t.running or not t.log:
                    continue
                batch = list(t.log)
                t.log.clear()
                t.committed += len(batch)
            for delivery in batch:
                if self._handler(delivery) and not delivery.redelivered:  # at-least-once: seen twice
                    delivery.redelivered = True
                    self._handler(delivery)

    def samples(self) -> list[dict[str, Any]]:
        return []  # Triage scrapes the exporter itself

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RoutedBroker:
    """The run's broker for most queues and the Kafka topics for the queues they hold."""

    def __init__(self, primary: Broker, kafka: KafkaTopics, kafka_queues: set[str]) -> None:
        self.primary = primary
        self.kafka = kafka
        self.kafka_queues = kafka_queues
        self.system = primary.system
        self.description = f"{primary.description}; {kafka.description}"

    def _for(self, queue: str) -> Broker:
        return self.kafka if queue in self.kafka_queues else self.primary

    def destination(self, queue: str) -> str:
        return self._for(queue).destination(queue)

    def publish(self, queue: str, message_id: str, headers: dict[str, str], body: dict[str, str]) -> None:
        self._for(queue).publish(queue, message_id, headers, body)

    def set_consuming(self, queue: str, running: bool) -> None:
        self._for(queue).set_consuming(queue, running)

    def pump(self, timeout: float) -> None:
        self.kafka.pump(0.0)
        self.primary.pump(timeout)

    def samples(self) -> list[dict[str, Any]]:
        return self.primary.samples()

    def close(self) -> None:
        self.kafka.close()
        self.primary.close()
