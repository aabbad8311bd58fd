"""The simulated estate during a run: a clock, a schedule of actions, messages between systems,
and the decisions faults make. Workflows (simulator.flows) act through it.

Two clocks play the same workflows: the live run (wall time, compressed by --speed, real queues,
the fault schedule) and the history (past timestamps, as fast as it can be written, each
transaction's outcome drawn in advance: its fate).
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from simulator.brokers import Delivery
from simulator.scenario import FaultKind, Scenario
from simulator.telemetry import SpanRef, Telemetry
from simulator.transactions import Keys, Transaction, Transactions
from triage.settings import Facility, Settings

if TYPE_CHECKING:
    from simulator.flows import Flow

PROPAGATOR = TraceContextTextMapPropagator()
Action = Callable[[], None]


@dataclass(frozen=True)
class Cast:
    """What the live run and the history share: where telemetry goes, the transactions (and their
    truth), the scenario, the business settings, the workflows' flows and the business keys."""

    telemetry: Telemetry
    transactions: Transactions
    scenario: Scenario
    business: Settings
    flows: dict[str, Flow]
    keys: Keys


class Estate(ABC):
    """What every workflow step may do: send spans, logs and messages, wait, and ask the faults."""

    speed: float = 1.0
    origin: str = "live"

    def __init__(self, cast: Cast, rng: random.Random) -> None:
        self.telemetry = cast.telemetry
        self.transactions = cast.transactions
        self.scenario = cast.scenario
        self.business = business = cast.business
        self.flows = cast.flows
        self.keys = cast.keys
        self.facilities: dict[str, Facility] = {f.id: f for f in business.facilities}
        self.rng = rng
        self.at_ns = 0
        self._heap: list[tuple[int, int, Action]] = []
        self._seq = itertools.count()

    # -- time ---------------------------------------------------------------------------------

    @property
    def at(self) -> float:
        """The time of the action being played, in seconds since the epoch."""
        return self.at_ns / 1e9

    def later(self, delay: float, action: Action) -> None:
        """Play `action` after `delay` simulated seconds."""
        heapq.heappush(self._heap, (self.at_ns + int(delay / self.speed * 1e9), next(self._seq), action))

    def _next_due(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def _play_due(self, until_ns: int) -> int:
        played = 0
        while self._heap and self._heap[0][0] <= until_ns:
            due, _, action = heapq.heappop(self._heap)
            self.at_ns = due
            action()
            played += 1
        return played

    # -- telemetry ------------------------------------------------------------------------------

    def span(
        self,
        tx: Transaction | None,
        service: str,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None = None,
        parent: SpanRef | None = None,
        links: Sequence[SpanRef] = (),
        error: str | None = None,
        offset_ms: float = 0.0,
        duration_ms: float = 20.0,
        start_ns: int | None = None,
        late: float = 0.0,
    ) -> SpanRef:
        """Send a span starting `offset_ms` after the current action (or at `start_ns`)."""
        # A span given its own start (a slow call that began earlier) ends now.
        start = start_ns if start_ns is not None else self.at_ns + int(offset_ms * 1e6)
        end = (self.at_ns if start_ns is not None else start) + int(duration_ms * 1e6)
        return self.telemetry.span(
            tx,
            service,
            name,
            kind,
            start,
            end,
            attributes or {},
            parent,
            links,
            error,
            self._deliver_at(late),
        )

    def batch_span(
        self,
        txs: Sequence[Transaction],
        service: str,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
        duration_ms: float = 20.0,
    ) -> SpanRef:
        """Send one span for many transactions (a batch job): an event of each of them."""
        start = self.at_ns
        end = start + int(duration_ms * 1e6)
        return self.telemetry.span(None, service, name, kind, start, end, attributes, also=txs)

    def _deliver_at(self, late: float) -> float | None:
        return None

    def publish(
        self,
        tx: Transaction,
        queue: str,
        parent: SpanRef,
        handler: str,
        service: str,
        attributes: Mapping[str, Any] | None = None,
        offset_ms: float = 5.0,
    ) -> None:
        """Send a message for `tx` to `queue` from a producer span under `parent`; `handler` consumes it."""
        destination = self.destination(queue)
        message_id = uuid.UUID(int=self.rng.getrandbits(128)).hex
        attrs = {
            **self._messaging(queue, message_id),
            "messaging.destination.name": destination,
            "messaging.operation.type": "send",
            **(attributes or {}),
        }
        producer = self.span(
            tx, service, f"{destination} publish", SpanKind.PRODUCER, attrs, parent, offset_ms=offset_ms
        )
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers, context=producer.context)
        body = {"workflow": tx.workflow, "key": tx.key, "handler": handler}
        self.send(tx, Delivery(queue, destination, message_id, headers, body))

    def consume(
        self,
        tx: Transaction,
        delivery: Delivery,
        service: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> SpanRef:
        """The consumer span of a delivery: the producer's trace continued, or a new trace linked to it."""
        carried = PROPAGATOR.extract(delivery.headers)
        producer = trace.get_current_span(carried).get_span_context()
        attrs = {
            **self._messaging(delivery.queue, delivery.message_id),
            "messaging.destination.name": delivery.destination,
            "messaging.operation.type": "process",
            **(attributes or {}),
        }
        name = f"{delivery.destination} process"
        if producer.is_valid and self.rng.random() < self.scenario.chances.link_only:
            return self.span(tx, service, name, SpanKind.CONSUMER, attrs, links=[SpanRef(carried, producer)])
        parent = SpanRef(carried, producer) if producer.is_valid else None
        return self.span(tx, service, name, SpanKind.CONSUMER, attrs, parent)

    def _messaging(self, queue: str, message_id: str) -> dict[str, str]:
        """The messaging system, and the message id where the client sends one (Kafka's here do not)."""
        if queue in self.kafka_queues:
            return {"messaging.system": "kafka"}
        return {"messaging.system": self.messaging_system, "messaging.message.id": message_id}

    # -- transactions ---------------------------------------------------------------------------

    def criticality(self, tx: Transaction) -> str:
        facility = self.facilities.get(tx.facility)
        return facility.criticality if facility else "normal"

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    # -- what the estate's clock decides ----------------------------------------------------------

    messaging_system: str = "rabbitmq"
    kafka_queues: frozenset[str] = frozenset()  # queues that are Kafka topics (simulator.kafka)

    @abstractmethod
    def destination(self, queue: str) -> str:
        """The queue name spans carry for a configured queue."""

    @abstractmethod
    def send(self, tx: Transaction, delivery: Delivery) -> None:
        """Hand a message to the queue (or, in history, to its consumer at once or never)."""

    @abstractmethod
    def happens(self, tx: Transaction, fate: str, live: bool) -> bool:
        """Whether something goes wrong: live, when `live` says so; in history, when it is the fate."""

    @abstractmethod
    def fault(self, kind: FaultKind, target: str) -> Any:
        """The fault of this kind on this target now, if any (in history, only faults that recur every cycle:
        the others are fates there)."""

    @abstractmethod
    def retries(self, tx: Transaction) -> bool:
        """Whether the transaction's failed call is retried (live; in history when a recurring fault broke it)
        or given up (history: the failure is the fate)."""

    @abstractmethod
    def late(self) -> float:
        """How late (simulated seconds) the next leaf step's telemetry arrives; 0 on time."""
