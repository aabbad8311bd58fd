"""What every simulated workflow shares: its configuration, its pace, and how a transaction begins."""

from __future__ import annotations

import math
from typing import ClassVar

from simulator.estate import Estate
from simulator.scenario import Scenario
from simulator.transactions import Transaction
from triage.settings import Settings, Workflow

# Simulated seconds between a failed call and its retry, and before a person looks again.
RETRY = 120.0
RECHECK = 240.0
# A healthy step takes this share of its SLA: SLAs are set with headroom, five to twenty times what
# the step takes when all is well (so an at-risk wait can be told from a healthy one well before the
# SLA passes).
PACE = (0.05, 0.2)


class Flow:
    """One workflow of the demo: the spans, logs and messages each of its steps sends."""

    name: ClassVar[str]

    def __init__(self, scenario: Scenario, business: Settings) -> None:
        self.scenario = scenario
        self.workflow: Workflow = next(w for w in business.workflows if w.name == self.name)
        self.facility_ids = [f.id for f in business.facilities]

    def sla(self, step: str, criticality: str) -> float:
        """The step's SLA for a facility tier, in simulated seconds (4 minutes when it has none)."""
        found = next(s for s in self.workflow.steps if s.name == step)
        value = found.sla.for_criticality(criticality) if found.sla else None
        return value if value is not None else 240.0

    def pace(self, run: Estate, tx: Transaction, step: str) -> float:
        """How long a healthy transaction takes to reach `step`: well within its SLA."""
        return run.rng.uniform(*PACE) * self.sla(step, run.criticality(tx))

    def create(self, run: Estate, key: str) -> Transaction:
        """A new transaction at a random facility."""
        facility = run.rng.choice(self.facility_ids)
        tx = Transaction(self.name, key, facility, 0.0, origin=run.origin)
        self.describe(run, tx)
        return tx

    def describe(self, run: Estate, tx: Transaction) -> None:
        """Fill in the transaction's value and details (supplier, item...)."""

    def begin(self, run: Estate, tx: Transaction) -> None:
        """Send the first step's telemetry and set the rest going."""
        raise NotImplementedError

    def history_fate(self, run: Estate, tx: Transaction, age: float) -> str:
        """How a historic transaction that started `age` seconds before the live run ends."""
        roll = run.rng.random()
        for fate, share in self.scenario.backfill.outcomes.get(self.name, {}).items():
            if roll < share:
                return fate
            roll -= share
        return "completed"


def amount(run: Estate, median: float, spread: float = 1.0) -> float:
    """A money amount, log-normally spread around `median`, in cents precision."""
    return round(median * math.exp(run.rng.gauss(0.0, spread)), 2)
