"""Plotly figures and SVG sparklines the pages and the report draw, built from the query results."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go

from correlator import StateCount, TimelineEvent, Transaction
from dashboards import format as fmt
from dashboards.queries.telemetry import Series
from dashboards.queries.workflow import CycleTimes, StepState, Throughput, Transition
from triage.settings import Step, Workflow
from triage.vocabulary import STUCK, State

STATE_COLORS = {
    "stalled": "#d97706",
    "blocked": "#dc2626",
    "failed": "#7f1d1d",
    "in_progress": "#2563eb",
    "completed": "#16a34a",
}
CRITICALITY_ORDER = ("critical", "high", "normal")
OK, WARN, BAD, MUTED = "#16a34a", "#d97706", "#dc2626", "#94a3b8"


def _layout(fig: go.Figure, height: int, **extra: object) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        font={"family": "Inter, system-ui, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.2},
        **extra,
    )
    return fig


def sparkline_svg(values: Sequence[float], color: str = "#2563eb", width: int = 120, height: int = 28) -> str:
    """A data: URI of a tiny SVG line chart (no axes): cheap to send, prints the same in the PDF."""
    points = [float(v) for v in values if v is not None]
    if len(points) < 2:
        points = (points or [0.0]) * 2
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = width / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(points)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def value_at_risk(counts: Sequence[StateCount]) -> go.Figure:
    """Stuck value by workflow, stacked by facility criticality."""
    stuck = [c for c in counts if c.state in STUCK]
    workflows = sorted({c.workflow for c in stuck})
    fig = go.Figure()
    colors = {"critical": BAD, "high": WARN, "normal": MUTED}
    for tier in CRITICALITY_ORDER:
        values = [sum(c.value for c in stuck if c.workflow == w and c.criticality == tier) for w in workflows]
        if any(values):
            fig.add_bar(
                name=tier,
                x=[fmt.label(w) for w in workflows],
                y=values,
                marker_color=colors[tier],
                hovertemplate="%{x}: $%{y:,.0f}<extra>" + tier + "</extra>",
            )
    return _layout(fig, 260, barmode="stack", yaxis={"title": "value at risk ($)"})


def step_timeline(
    definition: Workflow | None, events: Sequence[TimelineEvent], tx: Transaction, now: datetime | None = None
) -> go.Figure:
    """Gantt-like: each reached step as the bar from the previous step, green within its SLA, red past it;
    the pending next step as an open bar up to now with its due time marked."""
    now = now or datetime.now(UTC)
    reached: dict[str, datetime] = {}
    for e in events:
        if e.step and e.status == "ok" and not e.failure and e.step not in reached:
            reached[e.step] = e.at
    order = [s.name for s in definition.steps] if definition else []
    order += [s for s in sorted(reached, key=lambda s: reached[s]) if s not in order]
    slas = (
        {s.name: (s.sla.for_criticality(tx.criticality) if s.sla else None) for s in definition.steps}
        if definition
        else {}
    )
    fig = go.Figure()
    previous = tx.started_at
    rows: list[str] = []
    for name in order:
        if name in reached:
            start, end = previous, reached[name]
            late = slas.get(name) is not None and (end - start).total_seconds() > (slas[name] or 0)
            color, text = (BAD if late else OK), f"{fmt.duration((end - start).total_seconds())}"
            previous = end
        elif name == tx.next_step and tx.state != State.COMPLETED:
            start, end = previous, now
            late = tx.due_at is not None and now > tx.due_at
            color, text = (BAD if late else WARN), f"waiting {fmt.duration((end - start).total_seconds())}"
        else:
            continue
        rows.append(name)
        width_ms = max((end - start).total_seconds() * 1000, 60_000)
        fig.add_bar(
            y=[name],
            x=[width_ms],
            base=[start.isoformat()],
            orientation="h",
            marker_color=color,
            text=[text],
            textposition="auto",
            showlegend=False,
            hovertemplate=f"{name}: {text}<extra></extra>",
        )
        sla = slas.get(name)
        if sla:
            due = start + timedelta(seconds=sla)
            fig.add_scatter(
                x=[due.isoformat()],
                y=[name],
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 22, "color": "#111827", "line": {"width": 2}},
                name="SLA due",
                showlegend=False,
                hovertemplate=f"SLA {fmt.duration(sla)}: due {fmt.when(due)}<extra></extra>",
            )
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(rows)))
    fig.update_xaxes(type="date")
    return _layout(fig, 80 + 45 * max(len(rows), 1), bargap=0.35)


def flow_diagram(
    definition: Workflow | None, transitions: Sequence[Transition], states: Sequence[StepState]
) -> go.Figure:
    """Steps as nodes left to right (a `one_of`'s branches one above the other); edges labelled with count
    and p50/p95 step time; stuck counts in red."""
    place = _step_places(definition)
    order = list(place)
    for t in transitions:
        for name in (t.from_step, t.to_step):
            if name and name not in place:
                place[name] = (max((c for c, _ in place.values()), default=-1) + 1, 0.0)
                order.append(name)
    x = {name: c for name, (c, _) in place.items()}
    y = {name: r for name, (_, r) in place.items()}
    stuck_at: dict[str, int] = {}
    for s in states:
        if s.state in STUCK:
            stuck_at[s.current_step] = stuck_at.get(s.current_step, 0) + s.count
    fig = go.Figure()
    for t in transitions:
        if t.from_step not in x or t.to_step not in x:
            continue
        x0, x1 = x[t.from_step], x[t.to_step]
        y0, y1 = y[t.from_step], y[t.to_step]
        lift = 0.0 if x1 == x0 + 1 or y0 != y1 else 0.25 * abs(x1 - x0)
        waiting = sum(
            s.count for s in states if s.current_step == t.from_step and s.next_step == t.to_step and s.state in STUCK
        )
        color = BAD if waiting else "#64748b"
        xs = [x0 + (x1 - x0) * k / 10 for k in range(11)]
        ys = [y0 + (y1 - y0) * k / 10 + lift * 4 * (k / 10) * (1 - k / 10) for k in range(11)]
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": color, "width": 1 + min(t.count, 10_000) ** 0.3},
            hoverinfo="skip",
            showlegend=False,
        )
        label = f"{t.count:,} · p50 {fmt.duration(t.p50_seconds)} · p95 {fmt.duration(t.p95_seconds)}"
        if waiting:
            label += f"<br><b>{waiting:,} stuck</b>"
        fig.add_annotation(
            x=(x0 + x1) / 2,
            y=(y0 + y1) / 2 + lift + 0.12,
            text=label,
            showarrow=False,
            font={"size": 11, "color": color},
        )
    reached = {name: 0 for name in order}
    for t in transitions:
        reached[t.to_step] = reached.get(t.to_step, 0) + t.count
    fig.add_scatter(
        x=[x[n] for n in order],
        y=[y[n] for n in order],
        mode="markers+text",
        marker={
            "size": 34,
            "color": [BAD if stuck_at.get(n) else "#2563eb" for n in order],
            "line": {"width": 2, "color": "white"},
        },
        text=[f"<b>{n}</b>" + (f"<br>{stuck_at[n]:,} stuck" if stuck_at.get(n) else "") for n in order],
        textposition="bottom center",
        hovertext=[f"{n}: reached by {reached.get(n, 0):,} in the window" for n in order],
        hoverinfo="text",
        showlegend=False,
    )
    fig.update_xaxes(visible=False, range=[-0.6, max(max(x.values(), default=0) + 0.6, 0.6)])
    low, high = min(y.values(), default=0.0), max(y.values(), default=0.0)
    fig.update_yaxes(visible=False, range=[low - 0.6, high + 0.9])
    return _layout(fig, 300 + int(120 * (high - low)))


def _step_places(definition: Workflow | None) -> dict[str, tuple[int, float]]:
    """Column and row of every step as the flow is written: a line left to right, the branches of a
    `one_of` side by side in rows, the step after it in the column after the longest branch."""
    places: dict[str, tuple[int, float]] = {}
    if definition is None:
        return places
    column = 0
    for item in definition.flow:
        if isinstance(item, Step):
            places[item.name] = (column, 0.0)
            column += 1
            continue
        rows = len(item.branches)
        for i, branch in enumerate(item.branches):
            for j, step in enumerate(branch):
                places[step.name] = (column + j, 0.9 * (i - (rows - 1) / 2))
        column += max(len(b) for b in item.branches)
    return places


def cycle_time_histogram(cycle: CycleTimes, target_seconds: float | None) -> go.Figure:
    hours = [(lo / 3600, hi / 3600, h) for lo, hi, h in cycle.bins]
    fig = go.Figure(
        go.Bar(
            x=[(lo + hi) / 2 for lo, hi, _ in hours],
            y=[h for _, _, h in hours],
            width=[max(hi - lo, 1e-3) for lo, hi, _ in hours],
            marker_color="#2563eb",
            hovertemplate="%{x:.1f} h: %{y:,.0f}<extra></extra>",
            showlegend=False,
        )
    )
    for name, seconds, color in (("p50", cycle.p50, OK), ("p95", cycle.p95, WARN), ("target", target_seconds, BAD)):
        if seconds:
            fig.add_vline(
                x=seconds / 3600,
                line_color=color,
                line_dash="dash",
                annotation_text=f"{name} {fmt.duration(seconds)}",
                annotation_position="top",
            )
    return _layout(fig, 260, xaxis={"title": "hours from start to completion"}, yaxis={"title": "transactions"})


def throughput_chart(tp: Throughput) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=tp.times, y=tp.started, name="started", mode="lines", line={"color": "#2563eb"})
    fig.add_scatter(x=tp.times, y=tp.completed, name="completed", mode="lines", line={"color": OK})
    fig.add_bar(x=tp.times, y=tp.stuck, name="started, now stuck", marker_color=BAD, opacity=0.6)
    return _layout(fig, 260, yaxis={"title": "transactions"})


def series_chart(series: Sequence[Series], title: str, percent: bool = False) -> go.Figure:
    fig = go.Figure()
    for s in series:
        fig.add_scatter(x=s.times, y=[v * 100 for v in s.values] if percent else s.values, name=s.name, mode="lines")
    return _layout(fig, 260, yaxis={"title": title})
