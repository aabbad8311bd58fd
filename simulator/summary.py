"""The demo's one-screen summary: transactions by workflow and state, top causes, the most urgent.

Read from the store every few seconds. On a terminal it redraws in place (rich Live); anywhere
else (CI, a pipe) it prints one line every `LINE_EVERY` seconds, and the full tables at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from simulator.forecasts import ForecastFigures, ForecastWatch
from simulator.simulation import Simulation
from triage.durations import format_duration
from triage.settings import Settings
from triage.store import Store
from triage.vocabulary import STATES, STUCK, Criticality, names

log = logging.getLogger("triage.simulator")
REFRESH = 2.0
LINE_EVERY = 10.0
_COUNTS = "SELECT Workflow, State, count(), sum(Value) FROM business_transactions FINAL GROUP BY Workflow, State"
_CAUSES = """
SELECT Workflow, CauseKind, CauseComponent, count(), countIf(Criticality = {critical:String}), sum(Value)
FROM business_transactions FINAL WHERE has({stuck:Array(String)}, State)
GROUP BY Workflow, CauseKind, CauseComponent ORDER BY count() DESC, sum(Value) DESC LIMIT 6
"""
_URGENT = """
SELECT Workflow, Key, State, FacilityName, Criticality, NextStep, Value, CauseKind, CauseComponent, CauseDetail
FROM business_transactions FINAL WHERE has({stuck:Array(String)}, State)
ORDER BY Priority DESC, UpdatedAt DESC LIMIT 1 BY CauseKind, CauseComponent LIMIT 3
"""
_STUCK = {"stuck": names(STUCK)}
_KEY_LABEL = {"procure_to_pay": "PO "}


@dataclass
class Snapshot:
    counts: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    causes: list[tuple[Any, ...]] = field(default_factory=list)
    urgent: list[tuple[Any, ...]] = field(default_factory=list)
    taken: float = 0.0
    forecasts: ForecastFigures | None = None

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
        self.forecast_watch = ForecastWatch(simulation.options.speed)

    def read(self, store: Store) -> Snapshot:
        """What the store says now (blocking: run it in a thread)."""
        counts = {(r[0], r[1]): (int(r[2]), float(r[3])) for r in store.query(_COUNTS).result_rows}
        causes = [tuple(r) for r in store.query(_CAUSES, {**_STUCK, "critical": str(Criticality.CRITICAL)}).result_rows]
        urgent = [tuple(r) for r in store.query(_URGENT, _STUCK).result_rows]
        self.forecast_watch.look(store)
        sim = self.simulation
        forecasts = self.forecast_watch.figures(sim.transactions, sim.judge)
        return Snapshot(counts, causes, urgent, time.time(), forecasts)

    async def run(self, store: Store, stop: asyncio.Event) -> None:
        """Background task beside the server: refresh from `store` until `stop` is set."""
        if self.console.is_terminal:
            with Live(self.render(), console=self.console, refresh_per_second=2, transient=False) as live:
                while not stop.is_set():
                    await self._refresh(store)
                    live.update(self.render())
                    await _sleep(stop, REFRESH)
                live.update(self.render())  # the last frame stays on screen
            return
        next_line = time.monotonic() + LINE_EVERY
        while not stop.is_set():
            await self._refresh(store)
            if time.monotonic() >= next_line:
                self.console.print(self.line(), highlight=False, soft_wrap=True)
                next_line += LINE_EVERY
            await _sleep(stop, REFRESH)

    async def _refresh(self, store: Store) -> None:
        try:
            self.snapshot = await asyncio.to_thread(self.read, store)
        except Exception as exc:  # the store may be closing; the last snapshot stays
            log.warning("event=summary_read_failed error=%r", exc)

    def line(self) -> str:
        """One line for logs: elapsed, counts, the top cause."""
        s, status = self.snapshot, self.simulation.status
        elapsed = time.monotonic() - self.started
        top = s.causes[0] if s.causes else None
        cause = f" top cause: {top[1]} on {top[2]} ({top[3]} {top[0]})" if top else ""
        by_state = ", ".join(f"{state} {s.total((state,))}" for state in STUCK)
        return (
            f"[{_clock(elapsed)} · simulated {_clock(status.sim_seconds)}] {status.phase}: "
            f"{status.sent_spans:,} spans sent, {s.total(STATES)} transactions, {s.total(STUCK)} stuck "
            f"({by_state}){cause}"
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
        if s.forecasts is not None:
            parts.append(Text(s.forecasts.line()))
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


def banner(settings: Settings, simulation: Simulation, workdir: Path) -> str:
    """What the demo prints once the server is up: where to look, what runs, how it ends."""
    otlp, api = simulation.endpoints()
    options = simulation.options
    rabbit = next((q for q in settings.queues if q.kind == "rabbitmq"), None)
    queues = (
        f"RabbitMQ, queues {rabbit.queue.rsplit('.', 2)[0] if rabbit.queue else ''}.* (deleted at exit)"
        if rabbit
        else "in memory (RabbitMQ not reachable), reported via POST /api/v1/queues/samples"
    )
    sla = format_duration(180 / options.speed)
    lines = [
        "[bold]Triage demo[/]: a simulated health-system integration estate sends real OpenTelemetry to Triage.",
        f"  stuck work  {api}/api/v1/transactions?state=stalled&state=blocked&state=failed",
        f"  causes      {api}/api/v1/causes      queues {api}/api/v1/queues",
        f"  API docs    {api}/docs               dashboards {api}/dashboards/",
        f"  OTLP/HTTP   {otlp}  (send your own telemetry too)",
        f"  queues      {queues}",
        f"  speed       ×{options.speed:g}: a 3m SLA is {sla} here; "
        + (f"history of the last {format_duration(options.backfill)} first" if options.backfill else "no history"),
    ]
    if options.truth:
        lines.append(f"  truth       {options.truth} (rewritten every 2 s)")
    if settings.store.startswith(f"chdb://{workdir}"):
        lines.append(f"  data        {workdir / 'data'} (deleted at exit; --store DIR keeps it)")
    lines.append(
        "Ctrl-C stops it"
        + (f"; it ends by itself after {format_duration(options.duration)}." if options.duration else ".")
    )
    return "\n".join(lines)
