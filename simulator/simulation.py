"""The demo's simulated estate, run in its own thread beside `triage serve`.

One thread plays everything (history, live actions, consumers, truth) so that the RabbitMQ
connection and the simulator's state have a single owner; the OpenTelemetry SDK exports from its
own threads. The ground truth is rewritten every `TRUTH_EVERY` seconds and once more at the end.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.brokers import Broker, Delivery, MemoryBroker, RabbitBroker, rabbit_reachable
from simulator.config import DemoOptions, queue_destinations
from simulator.estate import Cast
from simulator.faults import FaultSchedule
from simulator.flows import FLOWS, Flow
from simulator.history import HistoryEstate
from simulator.kafka import KafkaTopics, RoutedBroker
from simulator.live import LiveEstate
from simulator.observe import Observer
from simulator.scenario import Scenario
from simulator.telemetry import PATIENCE, Telemetry
from simulator.transactions import Keys, Transactions, write_truth
from simulator.truth import HealthLedger, Judge, Margins
from triage.errors import TriageError
from triage.settings import Settings

log = logging.getLogger("triage.simulator")
TRUTH_EVERY = 2.0
HISTORY_CHUNK = 300  # history actions played between two looks at the live clock
SAMPLE_EVERY = 2.0
CONSUMERS_EVERY = 0.25


@dataclass
class Status:
    """What the live summary shows about the simulation itself."""

    phase: str = "starting"
    broker: str = ""
    sim_seconds: float = 0.0
    live: int = 0
    history: int = 0
    sent_spans: int = 0
    faults: list[str] = field(default_factory=list)
    error: str = ""


def choose_broker(options: DemoOptions) -> str | None:
    """The AMQP URL to use, or None for in-memory queues (auto: RabbitMQ when it answers)."""
    if options.broker == "memory":
        return None
    if rabbit_reachable(options.amqp_url):
        return options.amqp_url
    if options.broker == "rabbitmq":
        raise TriageError(f"RabbitMQ does not answer at {options.amqp_url}; start it or use --broker memory")
    return None


class Simulation:
    """The hospital network's integration estate, sending real telemetry to one Triage server."""

    def __init__(self, settings: Settings, business: Settings, scenario: Scenario, options: DemoOptions) -> None:
        self.settings = settings
        self.business = business
        self.scenario = scenario
        self.options = options
        self.seed = options.seed if options.seed is not None else random.randrange(1 << 30)
        self.status = Status()
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self.deadline = time.monotonic() + options.duration if options.duration else None
        names = {w.name for w in settings.workflows}
        self.flows: dict[str, Flow] = {f.name: f(scenario, business) for f in FLOWS if f.name in names}
        destinations = queue_destinations(settings, [q.name for q in business.queues])
        # Queues Triage watches through an exporter are Kafka topics the simulator keeps (simulator.kafka).
        self.kafka = {q.name: q for q in settings.queues if q.kind == "prometheus" and q.name in destinations}
        self.destinations = {name: dest for name, dest in destinations.items() if name not in self.kafka}
        self.rabbit = any(q.kind == "rabbitmq" for q in settings.queues)
        # The run's ground truth, kept for whoever checks Triage against it after the run.
        conf = settings.correlation
        health = HealthLedger(conf.health_window, conf.dependency_error_rate, conf.dependency_min_errors)
        self.judge = Judge(settings, health)
        self.transactions = Transactions()

    def endpoints(self) -> tuple[str, str]:
        """Where the simulated services send OTLP, and Triage's API."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.settings.otlp_http_port}", f"http://{host}:{self.settings.port}"

    def request_stop(self) -> None:
        """Finish the run: send what is buffered, write the last truth, delete the queues."""
        self.stopping.set()

    async def run_beside(self, stop: asyncio.Event) -> None:
        """Background task beside the server: run until done, then set `stop` (the server stops too)."""
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()

        def main() -> None:
            try:
                self.run()
            except Exception as exc:  # reported once, here, and shown by the summary
                log.exception("event=simulation_failed")
                self.status.error = str(exc) or repr(exc)
            finally:
                loop.call_soon_threadsafe(finished.set)

        thread = threading.Thread(target=main, name="triage-simulator", daemon=True)
        thread.start()
        stopped = asyncio.create_task(stop.wait())
        done = asyncio.create_task(finished.wait())
        try:
            await asyncio.wait({stopped, done}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.aborting.set()
            raise
        finally:
            if stop.is_set():
                self.aborting.set()  # the server is going away: do not wait on it
            self.stopping.set()
            stopped.cancel()
            await asyncio.to_thread(thread.join, 30)
            done.cancel()
            stop.set()

    def run(self) -> None:
        """Play the history and the live estate until the duration is over or a stop is asked."""
        run = self.start()
        try:
            while not self.stopping.is_set():
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    break
                run.turn(time.time())
        finally:
            run.finish(flush=not self.aborting.is_set())

    def start(self) -> Run:
        """The run's telemetry, broker and estates, ready for its first turn."""
        conf = self.settings.correlation
        otlp, api = self.endpoints()
        key = self.settings.key_with("ingest")
        telemetry = Telemetry(otlp, api, key, Observer(self.settings), self.judge.health)
        live, history, broker = self._estates(telemetry, self.transactions)
        # Triage re-judges stuck work every `reevaluate` seconds: its answer may be that old.
        margins = Margins(behind=max(Margins.behind, conf.reevaluate + 3.0), ahead=TRUTH_EVERY + 2.0)
        return Run(self, live, history, broker, telemetry, margins)

    def _estates(
        self, telemetry: Telemetry, transactions: Transactions
    ) -> tuple[LiveEstate, HistoryEstate | None, Broker]:
        """The live estate on its broker, and the history to write first (None without --backfill)."""
        keys = Keys(random.Random(f"keys:{self.seed}"))
        cast = Cast(telemetry, transactions, self.scenario, self.business, self.flows, keys)
        schedule = FaultSchedule(self.scenario, self.seed)
        live = LiveEstate(cast, random.Random(f"live:{self.seed}"), schedule, self.options.speed)
        broker = self._broker(live.on_delivery)
        self.status.broker = broker.description
        history = None
        if self.options.backfill > 0:
            history = HistoryEstate(
                cast,
                random.Random(f"history:{self.seed}"),
                broker,
                self.options.backfill,
                time.time(),
                self.options.speed,
                schedule,
            )
            self.status.history = history.total
            history.kafka_queues = frozenset(self.kafka)
        live.kafka_queues = frozenset(self.kafka)
        live.attach(broker)
        return live, history, broker

    def _broker(self, handler: Callable[[Delivery], bool]) -> Broker:
        primary: Broker
        if self.rabbit:
            url = next(q.url for q in self.settings.queues if q.kind == "rabbitmq" and q.url)
            primary = RabbitBroker(url, self.destinations, handler)
        else:
            primary = MemoryBroker(self.destinations, handler)
        if not self.kafka:
            return primary
        return RoutedBroker(primary, KafkaTopics(self.kafka, handler), set(self.kafka))


class Run:
    """One run of the estate: `turn` plays what is due (a chunk of history first), `finish` ends it.

    `Simulation.run` turns it until the duration is over; a test may turn it itself and look at
    Triage between two turns (after `telemetry.export()`, everything sent so far is on its way)."""

    def __init__(
        self,
        simulation: Simulation,
        live: LiveEstate,
        history: HistoryEstate | None,
        broker: Broker,
        telemetry: Telemetry,
        margins: Margins,
    ) -> None:
        self.simulation = simulation
        self.live = live
        self.history = history
        self.broker = broker
        self.telemetry = telemetry
        self.margins = margins
        self._next_truth = self._next_samples = self._next_consumers = time.time()

    @property
    def backfilling(self) -> bool:
        return self.history is not None and not self.history.done

    def turn(self, now: float) -> None:
        """Play one chunk of history and every live action due by `now`; keep queues, samples and truth current."""
        sim, live, telemetry, status = self.simulation, self.live, self.telemetry, self.simulation.status
        backfilling = self.backfilling
        if self.history is not None and backfilling:
            self.history.play(HISTORY_CHUNK)
        status.phase = "writing history" if backfilling else "live"
        status.sent_spans = telemetry.sent_spans
        live.play(now)
        if now >= self._next_consumers:
            live.update_consumers()
            self._next_consumers = now + CONSUMERS_EVERY
            status.sim_seconds = live.sim_time(now)
            status.live = live.created
            status.faults = [f.name for f in live.active_faults()]
        telemetry.pump(now)
        if now >= self._next_samples:
            telemetry.push_queue_samples(self.broker.samples())
            self._next_samples = now + SAMPLE_EVERY
        if now >= self._next_truth:
            judge = sim.judge
            if sim.options.truth:
                write_truth(sim.options.truth, sim.transactions.truth(judge, now, self.margins))
            judge.health.prune(now - judge.health.window - self.margins.behind - 60)
            self._next_truth = now + TRUTH_EVERY
        self.broker.pump(0.0 if backfilling else min(0.05, live.seconds_to_next(time.time())))

    def finish(self, flush: bool = True) -> None:
        """Send what is buffered (unless `flush` is False: the server is going away), write the last
        truth, close the queues and the telemetry."""
        sim = self.simulation
        sim.status.phase = "stopping"
        if flush and not self.telemetry.flush():
            log.warning(
                "event=telemetry_not_delivered lost=%d hint='Triage refused telemetry for over %.0f s; the ground "
                "truth counts it as sent, so scores against it are off'",
                self.telemetry.lost,
                PATIENCE,
            )
        if sim.options.truth:
            write_truth(sim.options.truth, sim.transactions.truth(sim.judge, time.time(), self.margins))
        self.broker.close()
        self.telemetry.close()
        sim.status.phase = "stopped"
