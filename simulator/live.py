"""The live run: the estate on the wall clock, --speed times faster, with real queues and the fault schedule."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from simulator.brokers import Broker, Delivery
from simulator.estate import Cast, Estate
from simulator.faults import Fault, FaultSchedule
from simulator.flows import Flow
from simulator.scenario import FaultKind
from simulator.transactions import LIVE, Transaction

log = logging.getLogger("triage.simulator")
# Queues nothing consumes: messages parked there wait for a person.
UNCONSUMED = frozenset({"invoice-retries"})
LATE = (80.0, 160.0)  # simulated seconds a late delivery is held back


class LiveEstate(Estate):
    """Transactions arrive at the scenario's rates; faults follow the schedule in simulated time."""

    origin = LIVE

    def __init__(self, cast: Cast, rng: random.Random, schedule: FaultSchedule, speed: float) -> None:
        super().__init__(cast, rng)
        self.schedule = schedule
        self.speed = speed
        self.started = time.time()
        self.broker: Broker | None = None
        self.created = 0

    def attach(self, broker: Broker) -> None:
        """Start the run on `broker`: consumers as the schedule says, first arrivals scheduled."""
        self.broker = broker
        self.messaging_system = broker.system
        self.started = time.time()
        self.at_ns = time.time_ns()
        self.update_consumers()
        for name, flow in self.flows.items():
            rate = self.scenario.traffic.get(name, 0.0)
            if rate > 0:
                self._schedule_arrival(flow, rate)

    def sim_time(self, at: float | None = None) -> float:
        """Simulated seconds since the run started."""
        return ((self.at if at is None else at) - self.started) * self.speed

    def _schedule_arrival(self, flow: Flow, rate: float) -> None:
        def arrive() -> None:
            tx = self.transactions.add(flow.create(self, self.keys.new(flow.name)))
            self.created += 1
            flow.begin(self, tx)
            self._schedule_arrival(flow, rate)

        self.later(self.rng.expovariate(rate / 3600.0), arrive)

    def play(self, now: float) -> None:
        """Play every action due by `now`."""
        self._play_due(int(now * 1e9))

    def seconds_to_next(self, now: float) -> float:
        due = self._next_due()
        return max(0.0, due / 1e9 - now) if due is not None else 1.0

    def update_consumers(self) -> None:
        """Start and stop consumers as the `consumer_stopped` faults say."""
        assert self.broker is not None
        t = self.sim_time(time.time())
        for queue in self.business.queues:
            if queue.name not in UNCONSUMED:
                stopped = self.schedule.active("consumer_stopped", queue.name, t) is not None
                self.broker.set_consuming(queue.name, not stopped)

    def active_faults(self) -> list[Fault]:
        return self.schedule.active_faults(self.sim_time(time.time()))

    def on_delivery(self, delivery: Delivery) -> bool:
        """A consumer got a message: play its handler now; True asks for one duplicate delivery."""
        tx = self.transactions.get(delivery.body.get("workflow", ""), delivery.body.get("key", ""))
        if tx is None:
            log.warning("event=unknown_message queue=%s body=%s", delivery.queue, delivery.body)
            return False
        self.at_ns = time.time_ns()
        getattr(self.flows[tx.workflow], delivery.body["handler"])(self, tx, delivery)
        return not delivery.redelivered and self.chance(self.scenario.chances.duplicate_delivery)

    # -- Estate -------------------------------------------------------------------------------

    def destination(self, queue: str) -> str:
        assert self.broker is not None
        return self.broker.destination(queue)

    def send(self, tx: Transaction, delivery: Delivery) -> None:
        assert self.broker is not None
        tx.messages.add(delivery.message_id)
        self.broker.publish(delivery.queue, delivery.message_id, delivery.headers, delivery.body)

    def happens(self, tx: Transaction, fate: str, live: bool) -> bool:
        return live

    def fault(self, kind: FaultKind, target: str) -> Fault | None:
        return self.schedule.active(kind, target, self.sim_time())

    def retries(self, tx: Transaction) -> bool:
        return True

    def late(self) -> float:
        return self.rng.uniform(*LATE) if self.chance(self.scenario.chances.late_delivery) else 0.0

    def _deliver_at(self, late: float) -> float | None:
        return self.at + late / self.speed if late > 0 else None

    def describe(self) -> dict[str, Any]:
        return {"sim_seconds": self.sim_time(time.time()), "created": self.created}
