"""The executive workflow-stall report: findings in plain language first, then charts and tables.

One model feeds the report page, the HTML document and the PDF, so they always say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from dashboards import format as fmt
from dashboards.queries import report as q
from triage.durations import parse_duration
from triage.settings import Settings
from triage.store import Store
from triage.targets import end_to_end

PERIODS = ("24h", "7d", "14d", "30d", "90d")
MAX_PERIOD = 400 * 86_400
# A report whose figures end longer ago than this says when they end.
_LAG = timedelta(seconds=5)


@dataclass
class ReportChart:
    title: str
    caption: str
    figure: go.Figure


@dataclass
class ReportTable:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    numeric: tuple[int, ...] = ()


@dataclass(frozen=True)
class Headline:
    """The figures the findings state, as numbers: what the summary's sentences are written from."""

    started: int
    stalled: int
    stalled_before: int
    stuck_now: int
    value_stuck: float
    value_stalled: float
    completed_with_target: int  # completed in the period, in a workflow and tier that has a target
    within_target: int
    leading_cause: q.CauseStalls | None


@dataclass
class Report:
    period: str
    start: datetime
    end: datetime
    generated_at: datetime
    summary: list[str]
    charts: list[ReportChart] = field(default_factory=list)
    tables: list[ReportTable] = field(default_factory=list)
    empty: bool = False
    empty_hint: list[str] = field(default_factory=list)
    headline: Headline | None = None

    @property
    def title(self) -> str:
        return f"Workflow stalls, {self.start:%b %d} – {self.end:%b %d %Y}"

    @property
    def subtitle(self) -> str:
        generated = f"{self.generated_at:%Y-%m-%d %H:%M} UTC"
        figures = f" from figures as of {self.end:%H:%M:%S} UTC" if self.generated_at - self.end > _LAG else ""
        return f"last {self.period}, compared with the {self.period} before; generated {generated}{figures}"


def parse_period(text: str) -> str:
    """A period such as 7d or 24h; ValueError with the fix when it is not one."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"period {text!r} is not a duration: write 7d, 14d, 30d or 24h") from exc
    if not 3600 <= seconds <= MAX_PERIOD:
        raise ValueError(f"period {text!r} must be between 1h and 400d")
    return text.strip()


@dataclass
class _Period:
    workflows: list[q.WorkflowStalls]
    cycle: list[q.CycleTime]
    facilities: list[q.FacilityStalls]
    causes: list[q.CauseStalls]
    days: list[q.Day]

    @property
    def started(self) -> int:
        return sum(w.started for w in self.workflows)

    @property
    def stalled(self) -> int:
        return sum(w.stalled for w in self.workflows)


def _load(
    store: Store, settings: Settings, start: datetime, end: datetime, full: bool, snap: q.Snapshot | None
) -> _Period:
    """The period's numbers; the previous period (`full` False) needs only its stalls by workflow and day."""
    split = q.breakdowns(store, start, end, snap=snap)
    return _Period(
        workflows=split.workflows,
        cycle=q.cycle_times(store, start, end, end_to_end(settings), snap=snap) if full else [],
        facilities=split.facilities,
        causes=q.cause_stalls(store, start, end, snap=snap) if full else [],
        days=split.days,
    )


def build_report(
    store: Store, settings: Settings, period: str = "7d", now: datetime | None = None, *, charts: bool = True
) -> Report:
    """The report for the `period` up to `now`, compared with the period before it. Without `now`, up to
    the last refresh of the report's snapshot (at most its interval ago, or now on a small store), whose
    figures stay as fast to read however much the store holds."""
    from dashboards.report import charts as report_charts

    length = timedelta(seconds=parse_duration(parse_period(period)))
    snap = q.snapshot(store) if now is None else None
    end = snap.at if snap else now or datetime.now(UTC)
    start, previous_start = end - length, end - 2 * length
    this = _load(store, settings, start, end, True, snap)
    before = _load(store, settings, previous_start, start, False, snap)
    worst = q.worst_offenders(store, start, end, snap=snap)
    report = Report(period, start, end, datetime.now(UTC), [])
    if this.started == 0 and not this.cycle:
        report.empty = True
        report.summary = [f"No business transactions started between {start:%b %d %H:%M} and {end:%b %d %H:%M} UTC."]
        report.empty_hint = [
            "Either nothing was correlated in this period, or Triage was not yet receiving telemetry.",
            "Check that workflows are configured (`triage check-config`) and that the collector receives spans; "
            "or choose a longer period.",
        ]
        return report
    report.headline = headline(this, before)
    report.summary = _summary(this, report.headline, worst, period)
    report.tables = _tables(this, before, worst)
    if charts:
        report.charts = report_charts.charts(this.days, before.days, this.cycle, this.facilities, this.causes, length)
    return report


def _change(now: int, before: int) -> str:
    if before == 0:
        return "none in the period before" if now else "none before either"
    delta = (now - before) / before
    if abs(delta) < 0.05:
        return f"about the same as the {fmt.count(before)} before"
    return f"{'up' if delta > 0 else 'down'} {abs(delta) * 100:.0f}% from {fmt.count(before)} the period before"


def headline(this: _Period, before: _Period) -> Headline:
    """The headline figures of the period, against the period before."""
    late = [c for c in this.cycle if c.target_seconds and c.completed]
    return Headline(
        started=this.started,
        stalled=this.stalled,
        stalled_before=before.stalled,
        stuck_now=sum(w.stuck_now for w in this.workflows),
        value_stuck=sum(w.value_stuck for w in this.workflows),
        value_stalled=sum(w.value_stalled for w in this.workflows),
        completed_with_target=sum(c.completed for c in late),
        within_target=sum(c.within_target for c in late),
        leading_cause=this.causes[0] if this.causes else None,
    )


def _summary(this: _Period, h: Headline, worst: list[q.Offender], period: str) -> list[str]:
    lines = [
        f"In the last {period}, {fmt.count(h.started)} business transactions started; "
        f"{fmt.count(h.stalled)} ({fmt.percent(h.stalled, h.started)}) stalled at least once — "
        f"{_change(h.stalled, h.stalled_before)}.",
        f"{fmt.count(h.stuck_now)} are still stuck, holding {fmt.money(h.value_stuck)}; "
        f"{fmt.money(h.value_stalled)} of business value was delayed in all.",
    ]
    if this.workflows and this.workflows[0].stalled:
        w = this.workflows[0]
        lines.append(
            f"Most affected workflow: {fmt.label(w.workflow)}, {fmt.count(w.stalled)} stalls "
            f"({fmt.percent(w.stalled, w.started)} of its transactions)."
        )
    if h.leading_cause:
        c = h.leading_cause
        lines.append(
            f"Leading cause: {c.kind.replace('_', ' ')} on {c.component}, behind {fmt.count(c.transactions)} stalled "
            f"transactions ({', '.join(c.workflows)})."
        )
    if this.facilities:
        f = this.facilities[0]
        lines.append(
            f"Hardest-hit facility: {f.name} ({f.criticality}), {fmt.count(f.stalled)} stalls, "
            f"{fmt.money(f.value_stalled)} delayed."
        )
    if h.completed_with_target:
        lines.append(
            f"{fmt.percent(h.within_target, h.completed_with_target)} of completed transactions finished "
            "within their SLA target."
        )
    if worst:
        o = worst[0]
        lines.append(
            f"Worst open case: {o.workflow} {o.key} at {o.facility_name} ({fmt.money(o.value)}), {o.state} at "
            f"{o.current_step or 'its first step'}"
            + (f" — {o.cause_kind.replace('_', ' ')} on {o.cause_component}." if o.cause_kind else ".")
        )
    return lines


def _tables(this: _Period, before: _Period, worst: list[q.Offender]) -> list[ReportTable]:
    previous = {w.workflow: w for w in before.workflows}
    workflows = [
        [
            w.workflow,
            fmt.count(w.started),
            fmt.count(w.stalled),
            fmt.percent(w.stalled, w.started),
            fmt.count(previous[w.workflow].stalled) if w.workflow in previous else "—",
            fmt.count(w.stuck_now),
            fmt.money(w.value_stalled),
        ]
        for w in this.workflows
    ]
    cycle = [
        [
            c.workflow,
            c.criticality,
            fmt.count(c.completed),
            fmt.duration(c.p50_seconds),
            fmt.duration(c.p95_seconds),
            fmt.duration(c.target_seconds) if c.target_seconds else "—",
            fmt.percent(c.within_target, c.completed) if c.target_seconds else "—",
        ]
        for c in this.cycle
    ]
    facilities = [
        [f.name, f.criticality, fmt.count(f.stalled), fmt.percent(f.stalled, f.started), fmt.money(f.value_stalled)]
        for f in this.facilities
    ]
    causes = [
        [c.kind.replace("_", " "), c.component, fmt.count(c.transactions), ", ".join(c.workflows)] for c in this.causes
    ]
    offenders = [
        [
            o.workflow,
            o.key,
            o.facility_name,
            o.state,
            o.current_step or "—",
            f"{o.cause_kind.replace('_', ' ')}: {o.cause_component}" if o.cause_kind else "—",
            fmt.money(o.value),
        ]
        for o in worst
    ]
    return [
        ReportTable(
            "Stalls by workflow",
            ["workflow", "started", "stalled", "share", "stalled before", "stuck now", "value delayed"],
            workflows,
            (1, 2, 3, 4, 5, 6),
        ),
        ReportTable(
            "Cycle time against target",
            ["workflow", "criticality", "completed", "median", "p95", "target", "within target"],
            cycle,
            (2, 3, 4, 5, 6),
        ),
        ReportTable(
            "Stalls by facility",
            ["facility", "criticality", "stalled", "share", "value delayed"],
            facilities,
            (2, 3, 4),
        ),
        ReportTable("Stalls by cause", ["cause", "component", "transactions", "workflows"], causes, (2,)),
        ReportTable(
            "Worst open cases", ["workflow", "key", "facility", "state", "at step", "cause", "value"], offenders, (6,)
        ),
    ]
