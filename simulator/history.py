"""The backfill: days of history written with past timestamps, so that charts mean something at once.

The same workflows play on a virtual clock, as fast as the SDK takes spans. Each historic
transaction's outcome is drawn when it is created (its fate): most complete; some fail, are
lost in a queue or wait on a person, as the scenario's `backfill.outcomes` and the faults that
were already on before the live run (`history`) say. A failure that is the fate is not retried.

The scripted faults that repeat every cycle were on in the past too, on the same cycle: history
meets the outage, the slow ledger, the stopped consumers and the absent committee chair as live
traffic does, waits them out (a stopped consumer takes its messages when it is back, a call that
failed because of the fault is retried) and completes late or in time. So what history says about
how long a step's wait takes (what breach forecasts learn from) is what the live run will see.

Two time scales, on purpose. The calendar is wall time: transactions start over the whole
backfill span (two days by default) at `backfill.rates` per hour, and a fault's `history` is
that long before the live run, so the charts have days to show. The last `backfill.recent_cycles`
fault cycles before the live run have the live traffic too (its rates per simulated hour): sparse
history shows how long one transaction waits, not how a step's flow goes while many wait on it,
which is what tells a stopped step from a slow transaction (breach forecasts, stoppages). Each
transaction plays at the run's --speed, as live traffic does: its steps and hand-offs take the
scenario's simulated durations divided by --speed, the scale its SLAs are judged on (demo_config
divides them too). Played at real durations, history missed targets that are --speed times
shorter: the report said 3% of completed transactions finished within target.
"""

from __future__ import annotations

import random

from simulator.brokers import Broker, Delivery
from simulator.estate import Action, Cast, Estate
from simulator.faults import Fault, FaultSchedule
from simulator.flows import Flow
from simulator.live import UNCONSUMED
from simulator.scenario import FaultKind
from simulator.transactions import BACKFILL, Transaction

# Historic transactions start at least this long (simulated seconds, so SLOWEST / speed of wall time)
# before the live run, so that all have ended: the slowest that completes (a PO that waits out the
# outage, then the committee chair's leave; a supplier review behind its backlog) takes under two
# hours of simulated time.
SLOWEST = 2 * 3600.0
CONSUME_DELAY = (2.0, 30.0)  # simulated seconds a consumer takes to pick a historic message up
# Decisions a recurring fault makes (Estate.happens' `live`) rather than chance: in history as live.
FAULTED = frozenset({"approval_saas_down", "capital_pending", "ledger_failed"})


class HistoryEstate(Estate):
    """Plays the history of `seconds` before `end` (epoch seconds) in time order, a chunk at a time,
    each transaction `speed` times faster than the scenario's simulated time (the live run's --speed)."""

    origin = BACKFILL

    def __init__(
        self,
        cast: Cast,
        rng: random.Random,
        broker: Broker,
        seconds: float,
        end: float,
        speed: float,
        schedule: FaultSchedule,
    ) -> None:
        super().__init__(cast, rng)
        self.speed = speed
        self.schedule = schedule
        self._by_fault: set[int] = set()  # transactions whose last failure was a recurring fault's, not the fate
        flows, keys, scenario, transactions = cast.flows, cast.keys, cast.scenario, cast.transactions
        self.broker = broker
        self.messaging_system = broker.system
        self.end = end
        self.total = 0
        first, last = end - seconds, end - SLOWEST / speed
        # The recent cycles at live density (scenario.Backfill.recent_cycles), within the span.
        recent = min(seconds, scenario.backfill.recent_cycles * scenario.cycle / speed)
        for name, flow in flows.items():
            count = int(scenario.backfill.rates.get(name, 0.0) * seconds / 3600.0)
            dense = int(scenario.traffic.get(name, 0.0) * recent * speed / 3600.0)
            for i in range(count + dense):
                start = rng.uniform(first, last) if i < count else rng.uniform(max(first, last - recent), last)
                self.at_ns = int(start * 1e9)
                tx = flow.create(self, keys.new(name))
                tx.fate = flow.history_fate(self, tx, end - start)
                transactions.add(tx)
                self.later(0.0, self._beginning(flow, tx))
                self.total += 1

    def _beginning(self, flow: Flow, tx: Transaction) -> Action:
        return lambda: flow.begin(self, tx)

    @property
    def done(self) -> bool:
        return self._next_due() is None

    def play(self, actions: int) -> int:
        """Play up to `actions` actions, oldest first; returns how many were played."""
        played = 0
        while played < actions and not self.done:
            due = self._next_due()
            assert due is not None
            played += self._play_due(due)
        return played

    # -- Estate -------------------------------------------------------------------------------

    def destination(self, queue: str) -> str:
        return self.broker.destination(queue)

    def send(self, tx: Transaction, delivery: Delivery) -> None:
        tx.messages.add(delivery.message_id)
        if delivery.queue in UNCONSUMED:  # parked: it really waits in the queue
            self.broker.publish(delivery.queue, delivery.message_id, delivery.headers, delivery.body)
            return
        if tx.fate == "lost":
            return
        handler = getattr(self.flows[tx.workflow], delivery.body["handler"])
        delay = self.rng.uniform(*CONSUME_DELAY)
        stopped = self.schedule.recurring("consumer_stopped", delivery.queue, self.sim_time())
        if stopped is not None:  # it waits in the queue until its consumer is back
            delay += stopped[1] - self.sim_time()
        self.later(delay, lambda: handler(self, tx, delivery))

    def sim_time(self) -> float:
        """Simulated seconds since the live run started (negative: this is history), on the fault cycle."""
        return (self.at - self.end) * self.speed

    def happens(self, tx: Transaction, fate: str, live: bool) -> bool:
        by_fault = tx.fate != fate and live and fate in FAULTED
        (self._by_fault.add if by_fault else self._by_fault.discard)(id(tx))
        return tx.fate == fate or by_fault

    def fault(self, kind: FaultKind, target: str) -> Fault | None:
        found = self.schedule.recurring(kind, target, self.sim_time())
        return found[0] if found else None

    def retries(self, tx: Transaction) -> bool:
        return id(tx) in self._by_fault  # what a fault broke is tried again; what the fate broke stays broken

    def late(self) -> float:
        return 0.0
