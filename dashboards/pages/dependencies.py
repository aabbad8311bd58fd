"""Dependencies and queues: health, error rates, backlog and lag, and which workflows each one hurts now."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import dash
from dash import html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.context import current_context
from dashboards.filters import Filters
from dashboards.queries.telemetry import Hurt
from dashboards.widgets import (
    badge,
    empty_state,
    filter_bar,
    live_region,
    queue_cells,
    refreshes,
    section,
    sparkline,
    table,
)


def layout(**query: Any) -> html.Div:
    filters = Filters.from_query(query)
    return html.Div(
        [
            html.H1("Dependencies and queues"),
            filter_bar(filters, fields=("range",)),
            *live_region("dependencies", asdict(filters), 30_000),
        ]
    )


@refreshes("dependencies")
def refresh(filters: dict[str, Any]) -> list[Any]:
    context = current_context()
    view = data.dependencies(context.store, context.settings, Filters.from_query(filters))
    hurts: dict[str, list[Hurt]] = {}
    for h in view.hurt:
        hurts.setdefault(h.component, []).append(h)
    known = {s.name for s in view.services} | {q.name for q in view.queues} | {q.destination for q in view.queues}
    others = sorted((c for c in hurts if c not in known), key=lambda c: -sum(h.count for h in hurts[c]))
    return [
        section(
            "Services",
            _services(view, hurts),
            id="services",
            note=f"own spans over the last {view.filters.range}; callers’ client spans over at most 6h",
        ),
        section("Queues", _queues(view, hurts), id="queues"),
        section("Other components named as causes", _others(others, hurts), id="other-causes")
        if others
        else html.Div(),
    ]


def _health(rate: float, calls: int) -> str:
    if not calls:
        return "unknown"
    return "failing" if rate >= 0.2 else "degraded" if rate >= 0.05 else "ok"


def _hurt_text(items: list[Hurt]) -> str:
    """Stuck transactions per workflow that name this component as their cause, largest first."""
    if not items:
        return "—"
    by_workflow: dict[str, tuple[int, float]] = {}
    for h in items:
        n, value = by_workflow.get(h.workflow, (0, 0.0))
        by_workflow[h.workflow] = (n + h.count, value + h.value)
    ranked = sorted(by_workflow.items(), key=lambda kv: -kv[1][0])[:3]
    return "; ".join(f"{w}: {n:,} ({fmt.money(v)})" for w, (n, v) in ranked)


def _services(view: data.Dependencies, hurts: dict[str, list[Hurt]]) -> html.Table | html.Div:
    if not view.services:
        return empty_state(
            f"No spans in the last {view.filters.range}",
            "Services appear once they send OTLP traces to :4318 (HTTP) or :4317 (gRPC).",
            id="services-empty",
        )
    rows = []
    for s in view.services:
        worst_calls = s.calls if s.error_rate >= s.caller_error_rate else s.caller_calls
        status = _health(s.worst_rate, worst_calls)
        color = {"failing": figures.BAD, "degraded": figures.WARN}.get(status, figures.OK)
        rows.append(
            [
                s.name,
                badge(status),
                fmt.count(s.calls),
                fmt.percent(s.errors, s.calls) if s.calls else "—",
                fmt.percent(s.caller_errors, s.caller_calls) if s.caller_calls else "—",
                fmt.latency(s.p95_seconds),
                (s.last_error or s.caller_last_error)[:120],
                sparkline(figures.sparkline_svg(s.series.values, color), "error rate") if s.series else "",
                _hurt_text(hurts.get(s.name, [])),
            ]
        )
    headers = [
        "service",
        "health",
        "calls",
        "errors",
        "errors seen by callers",
        "p95",
        "last error",
        "error trend",
        "hurts now",
    ]
    return table(headers, rows, id="services-table", numeric=(2, 3, 4, 5))


def _queues(view: data.Dependencies, hurts: dict[str, list[Hurt]]) -> html.Table | html.Div:
    if not view.queues:
        return empty_state(
            "No queues reported",
            "Add `queues:` entries to the configuration, or push samples to POST /api/v1/queues/samples.",
            id="queues-empty",
        )
    rows = []
    for q in sorted(view.queues, key=lambda q: (q.status == "ok", -(q.backlog or 0))):
        series = view.queue_series.get(q.name)
        rate = (
            f"{q.rate_in or 0:.1f} / {q.rate_out or 0:.1f}" if q.rate_in is not None or q.rate_out is not None else "—"
        )
        rows.append(
            [
                *queue_cells(q),
                fmt.duration(q.time_lag_seconds),
                rate,
                q.detail or (q.error or ""),
                sparkline(figures.sparkline_svg(series.values), "backlog") if series else "",
                _hurt_text(hurts.get(q.name, []) + (hurts.get(q.destination, []) if q.destination != q.name else [])),
            ]
        )
    headers = [
        "queue",
        "system",
        "status",
        "backlog",
        "consumers",
        "time lag",
        "in / out per s",
        "why",
        "backlog trend",
        "hurts now",
    ]
    return table(headers, rows, id="queues-table", numeric=(3, 4, 5))


def _others(names: list[str], hurts: dict[str, list[Hurt]]) -> html.Table:
    rows = [[n, ", ".join(sorted({h.kind for h in hurts[n]})), _hurt_text(hurts[n])] for n in names]
    return table(["component", "cause", "hurts now"], rows)


dash.register_page(
    __name__, path="/dependencies", name="Dependencies", title="Triage · Dependencies", order=2, layout=layout
)
