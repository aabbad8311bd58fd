"""The report's charts: stall trend against the previous period, cycle time against target, stalls by
facility and by cause."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import plotly.graph_objects as go

from dashboards import figures
from dashboards.queries import report as q
from dashboards.report.model import ReportChart


def _layout(fig: go.Figure, height: int = 300, **extra: object) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        width=620,
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        font={"family": "DejaVu Sans, Inter, sans-serif", "size": 11},
        legend={"orientation": "h", "y": -0.22},
        **extra,
    )
    return fig


def trend(days: Sequence[q.Day], before: Sequence[q.Day], length: timedelta) -> ReportChart:
    fig = go.Figure()
    fig.add_bar(
        x=[d.day for d in days], y=[d.stalled for d in days], name="stalled, this period", marker_color=figures.BAD
    )
    fig.add_scatter(
        x=[d.day + length for d in before],
        y=[d.stalled for d in before],
        name="same day, period before",
        mode="lines+markers",
        line={"color": figures.MUTED, "dash": "dot"},
    )
    return ReportChart(
        "Stalls per day",
        "Transactions that stalled, by the day they started; dotted: the period before.",
        _layout(fig, yaxis={"title": "stalled transactions"}),
    )


def cycle_vs_target(cycle: Sequence[q.CycleTime]) -> ReportChart:
    fig = go.Figure()
    colors = {"critical": figures.BAD, "high": figures.WARN, "normal": "#2563eb"}
    for tier in figures.CRITICALITY_ORDER:
        rows = [c for c in cycle if c.criticality == tier]
        if not rows:
            continue
        fig.add_bar(
            x=[c.workflow for c in rows],
            y=[c.p95_seconds / 3600 for c in rows],
            name=f"p95, {tier}",
            marker_color=colors[tier],
        )
        with_target = [c for c in rows if c.target_seconds]
        if with_target:
            fig.add_scatter(
                x=[c.workflow for c in with_target],
                y=[c.target_seconds / 3600 for c in with_target],
                mode="markers",
                name=f"target, {tier}",
                marker={"symbol": "line-ew-open", "size": 26, "color": colors[tier], "line": {"width": 3}},
            )
    return ReportChart(
        "Cycle time against target",
        "95th-percentile hours from start to completion; dashes: target.",
        _layout(fig, barmode="group", yaxis={"title": "hours"}),
    )


def by_facility(facilities: Sequence[q.FacilityStalls]) -> ReportChart:
    rows = list(reversed(facilities[:10]))
    fig = go.Figure(
        go.Bar(
            x=[f.stalled for f in rows],
            y=[f.name for f in rows],
            orientation="h",
            marker_color=[figures.BAD if f.criticality == "critical" else figures.MUTED for f in rows],
        )
    )
    return ReportChart(
        "Stalls by facility",
        "Top facilities by stalled transactions; red: critical facilities.",
        _layout(fig, height=max(220, 40 + 26 * len(rows)), xaxis={"title": "stalled transactions"}),
    )


def by_cause(causes: Sequence[q.CauseStalls]) -> ReportChart:
    rows = list(reversed(causes[:10]))
    fig = go.Figure(
        go.Bar(
            x=[c.transactions for c in rows],
            y=[f"{c.kind.replace('_', ' ')} · {c.component}" for c in rows],
            orientation="h",
            marker_color="#2563eb",
        )
    )
    return ReportChart(
        "Stalls by cause",
        "What held transactions up, by cause and component.",
        _layout(fig, height=max(220, 40 + 26 * len(rows)), xaxis={"title": "transactions"}),
    )


def charts(
    days: Sequence[q.Day],
    before: Sequence[q.Day],
    cycle: Sequence[q.CycleTime],
    facilities: Sequence[q.FacilityStalls],
    causes: Sequence[q.CauseStalls],
    length: timedelta,
) -> list[ReportChart]:
    out = [trend(days, before, length)]
    if cycle:
        out.append(cycle_vs_target(cycle))
    if facilities:
        out.append(by_facility(facilities))
    if causes:
        out.append(by_cause(causes))
    return out
