"""Simulated business transactions: their identity, what they carry, and the events they sent."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator.observe import Observation
from simulator.truth import Judge, Margins

LIVE, BACKFILL = "live", "backfill"


@dataclass
class Transaction:
    """One instance of a workflow, as the simulator plays it."""

    workflow: str
    key: str
    facility: str
    value: float
    origin: str = LIVE
    fate: str = "completed"
    data: dict[str, Any] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    messages: set[str] = field(default_factory=set)


class Keys:
    """Business keys unique within a run, starting at a random offset so that runs rarely collide."""

    FORMATS = {
        "procure_to_pay": ("{:010d}", 4_500_000_000, 99_000_000),
        "invoice_sync": ("INV-{:08d}", 10_000_000, 89_000_000),
        "supplier_onboarding": ("SUP-{:06d}", 200_000, 790_000),
        "inventory_replenishment": ("RPL-{:08d}", 10_000_000, 89_000_000),
        "workforce_sync": ("EMP-{:06d}", 100_000, 890_000),
    }

    def __init__(self, rng: random.Random) -> None:
        self._next = {wf: base + rng.randrange(span) for wf, (_, base, span) in self.FORMATS.items()}

    def new(self, workflow: str) -> str:
        fmt = self.FORMATS[workflow][0]
        value = self._next[workflow]
        self._next[workflow] = value + 1
        return fmt.format(value)


class Transactions:
    """Every transaction of the run, by workflow and key."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Transaction] = {}

    def add(self, tx: Transaction) -> Transaction:
        self._items[(tx.workflow, tx.key)] = tx
        return tx

    def get(self, workflow: str, key: str) -> Transaction | None:
        return self._items.get((workflow, key))

    def __iter__(self) -> Iterator[Transaction]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def truth(self, judge: Judge, at: float, margins: Margins) -> list[dict[str, Any]]:
        """One ground-truth record per transaction that has sent anything, as of `at`."""
        as_of = datetime.fromtimestamp(at, UTC).isoformat()
        lines = []
        for tx in sorted(self, key=lambda t: (t.workflow, t.key)):
            expected = judge.expected(tx.workflow, tx.observations, at, at)
            if expected is None:
                continue
            lines.append(
                {
                    "workflow": tx.workflow,
                    "key": tx.key,
                    "state": expected.state,
                    "cause_kind": expected.cause_kind,
                    "component": expected.component,
                    "settled": judge.settled(tx.workflow, tx.observations, at, margins),
                    "origin": tx.origin,
                    "facility": tx.facility,
                    "as_of": as_of,
                }
            )
        return lines


def write_truth(path: Path, lines: list[dict[str, Any]]) -> None:
    """Replace the truth file in one step, so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")
    os.replace(tmp, path)
