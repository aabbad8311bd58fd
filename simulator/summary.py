"""The demo's one-screen summary: transactions by workflow and state, top causes, the most urgent.

Read from the store every few seconds. On a terminal it redraws in place (rich Live); anywhere
else (CI, a pipe) it prints one line every `LINE_EVERY` seconds, and the full tables at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from simulator.simulation import Simulation

if TYPE_CHECKING:
    from triage.runtime import Runtime

log = logging.getLogger("triage.simulator")
REFRESH = 2.0
LINE_EVERY = 10.0
STATES = ("in_progress", "completed", "stalled", "blocked", "failed")
STUCK = ("stalled", "blocked", "failed")
_COUNTS = "SELECT Workflow, State, count(), sum(Value) FROM business_transactions FINAL GROUP BY Workflow, State"
_CAUSES = """
SELECT Workflow, CauseKind, CauseComponent, count(), countIf(Criticality = 'critical'), sum(Value)
FROM business_transactions FINAL WHERE State IN ('stalled', 'blocked', 'failed')
GROUP BY Workflow, CauseKind, CauseComponent ORDER BY count() DESC, sum(Value) DESC LIMIT 6
"""
_URGENT = """
SELECT Workflow, Key, State, FacilityName, Criticality, NextStep, Value, CauseKind, CauseComponent, CauseDetail
FROM business_transactions FINAL WHERE State IN ('stalled', 'blocked', 'failed')
ORDER BY Priority DESC, UpdatedAt DESC LIMIT 1 BY CauseKind, CauseComponent LIMIT 3
"""
_KEY_LABEL = {"procure_to_pay": "PO "}


@dataclass
class Snapshot:
    counts: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    causes: list[tuple[Any, ...]] = field(default_factory=list)
    urgent: list[tuple[Any, ...]] = field(default_factory=list)
    taken: float = 0.0

    def total(self, states: tuple[str, ...]) -> int:
        return sum(n for (_, state), (n, _) in self.counts.items() if state in states)


class Summary:
    """Keeps the latest snapshot of what Triage says, and shows it."""

    def __init__(self, simulation: Simulation, api: str, console: Console | None = None) -> None:
        self.simulation = simulation
        self.api = api
        self.console = console or Console()
        self.snapshot = Snapshot()
        self.started = time.monotonic()

    def read(self, runtime: Runtime) -> Snapshot:
        """What the store says now (blocking: run it in a thread)."""
        store = runtime.store
        counts = {(r[0], r[1]): (int(r[2]), float(r[3])) for r in store.query(_COUNTS).result_rows}
        causes = [tuple(r) for r in store.query(_CAUSES).result_rows]
        urgent = [tuple(r) for r in store.query(_URGENT).result_rows]
        return Snapshot(counts, causes, urgent, time.time())

    async def run_in_server(self, runtime: Runtime, stop: asyncio.Event) -> None:
        """Background task for `serve()`: refresh until the server stops."""
        if self.console.is_terminal:
            with Live(self.render(), console=self.console, refresh_per_second=2, transient=False) as live:
                while not stop.is_set():
                    await self._refresh(runtime)
                    live.update(self.render())
                    await _sleep(stop, REFRESH)
                live.update(self.render())  # the last frame stays on screen
            return
        next_line = time.monotonic() + LINE_EVERY
        while not stop.is_set():
            await self._refresh(runtime)
            if time.monotonic() >= next_line:
                self.console.print(self.line(), highlight=False, soft_wrap=True)
                next_line += LINE_EVERY
            await _sleep(stop, REFRESH)

    async def _refresh(self, runtime: Runtime) -> None:
        try:
            self.snapshot = await asyncio.to_thread(self.read, runtime)
        except Exception as exc:  # the store may be closing; the last snapshot stays
            log.warning("event=summary_read_failed error=%r", exc)

    def line(self) -> str:
        """One line for logs: elapsed, counts, the top cause."""
        s, status = self.snapshot, self.simulation.status
        elapsed = time.monotonic() - self.started
        top = s.causes[0] if s.causes else None
        cause = f" top cause: {top[1]} on {top[2]} ({top[3]} {top[0]})" if top else ""
        return (
            f"[{_clock(elapsed)} · simulated {_clock(status.sim_seconds)}] {status.phase}: "
            f"{status.sent_spans:,} spans sent, {s.total(STATES)} transactions, {s.total(STUCK)} stuck "
            f"(stalled {s.total(('stalled',))}, blocked {s.total(('blocked',))}, failed {s.total(('failed',))})"
            f"{cause}"
        )

    def render(self) -> RenderableType:
        """The whole screen: header, workflow × state, top causes, most urgent, faults on now."""
        s, status, speed = self.snapshot, self.simulation.status, self.simulation.options.speed
        elapsed = time.monotonic() - self.started
        header = Text.assemble(
            ("Triage demo", "bold"),
            f" · {len(self.simulation.settings.facilities)} facilities · {len(self.simulation.flows)} workflows"
            f" · ×{speed:g} (1 s = {speed:g} s simulated) · {_clock(elapsed)} elapsed"
            f" · simulated {_clock(status.sim_seconds)} · {status.history:,} historic and {status.live:,} live"
            f" transactions sent · {status.phase}\n",
            (f"stuck work: {self.api}/api/v1/transactions?state=stalled&state=blocked&state=failed", "cyan"),
            f"   causes: {self.api}/api/v1/causes   queues: {self.api}/api/v1/queues   docs: {self.api}/docs",
        )
        parts: list[RenderableType] = [header, self._states_table(), self._causes_table()]
        if s.urgent:
            parts.append(self._urgent())
        faults = ", ".join(status.faults) or "none"
        parts.append(Text(f"Injected faults on now: {faults}", style="yellow"))
        if status.error:
            parts.append(Text(f"simulation failed: {status.error}", style="red"))
        return Group(*parts)

    def _states_table(self) -> Table:
        table = Table(title="Transactions by workflow and state", title_justify="left", expand=False)
        table.add_column("workflow")
        for state in STATES:
            table.add_column(state.replace("_", " "), justify="right", style="red" if state in STUCK else None)
        table.add_column("value at risk", justify="right")
        for workflow in self.simulation.flows:
            row = [str(self.snapshot.counts.get((workflow, state), (0, 0.0))[0]) for state in STATES]
            risk = sum(self.snapshot.counts.get((workflow, state), (0, 0.0))[1] for state in STUCK)
            table.add_row(workflow, *row, _money(risk))
        return table

    def _causes_table(self) -> Table:
        table = Table(title="Top causes of stuck work", title_justify="left", expand=False)
        for name in ("workflow", "cause", "component"):
            table.add_column(name)
        for name in ("stuck", "critical", "value at risk"):
            table.add_column(name, justify="right")
        for workflow, kind, component, count, critical, value in self.snapshot.causes:
            table.add_row(workflow, kind, component, str(count), str(critical), _money(value))
        return table

    def _urgent(self) -> Text:
        text = Text("Most urgent, one per cause\n", style="bold")
        for workflow, key, state, facility, criticality, step, value, kind, component, detail in self.snapshot.urgent:
            label = f"{_KEY_LABEL.get(workflow, '')}{key}"
            money = f" · {_money(value)}" if value else ""
            text.append(f"  {label} · {facility or 'no facility'} ({criticality}){money} · {state} before {step}: ")
            text.append(f"{kind} on {component}", style="red")
            text.append(f" — {detail}\n" if detail else "\n")
        return text


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _money(value: float) -> str:
    if value >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"${value / 1_000:.0f}k"
    return f"${value:,.0f}"
