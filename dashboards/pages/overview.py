"""Operations overview: what is stuck now, what it is worth, why, and the queues and dependencies behind it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import dash
from dash import dcc, html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.context import current_context
from dashboards.filters import Filters
from dashboards.widgets import (
    badge,
    empty_state,
    filter_bar,
    kpi,
    live_region,
    refreshes,
    section,
    sparkline,
    table,
    transaction_href,
    transaction_link,
)
from triage.vocabulary import STUCK

REFRESH_MS = 30_000


def layout(**query: Any) -> html.Div:
    filters = Filters.from_query(query)
    context = current_context()
    options = data.options(context.store, context.settings)
    return html.Div(
        [
            html.H1("Operations overview"),
            filter_bar(filters, options.workflows, options.facilities),
            _narrowing(filters),
            *live_region("overview", asdict(filters), REFRESH_MS),
        ]
    )


def _narrowing(filters: Filters) -> html.Div:
    """Filters an alert link set that no dropdown shows, with a way out."""
    if not filters.narrowing:
        return html.Div()
    shown = ", ".join(f"{k} = {v}" for k, v in filters.narrowing.items())
    cleared = Filters(filters.range, filters.workflow, filters.facility, filters.criticality)
    return html.Div(
        [
            html.Span(f"Also filtered by {shown} "),
            dcc.Link("clear", href=dash.get_relative_path("/") + cleared.query_string()),
        ],
        className="narrowing",
        id="overview-narrowing",
    )


@refreshes("overview")
def refresh(filters: dict[str, Any]) -> list[Any]:
    context = current_context()
    view = data.overview(context.store, context.settings, Filters.from_query(filters))
    if view.total == 0:
        return [_empty(view, bool(context.settings.workflows))]
    return [
        _headline(view),
        html.Div(
            [
                section("Stuck now by workflow, state and facility criticality", _matrix(view), id="stuck-matrix"),
                section(
                    "Value at risk",
                    dcc.Graph(figure=figures.value_at_risk(view.counts), config={"displayModeBar": False}),
                ),
            ],
            className="grid-2",
        ),
        section("Top causes", _causes(view), id="top-causes"),
        section(
            "At risk of missing their SLA",
            _at_risk_table(view),
            id="at-risk",
            note="in progress, and past what the history of their step says still makes the SLA",
        ),
        section(
            "Highest-priority stuck transactions",
            _stuck_table(view),
            id="stuck-table",
            note=f"top {len(view.stuck)} by priority; refreshed {fmt.when(view.loaded_at)}",
        ),
        html.Div(
            [
                section("Queues", _queues(view), id="queues", note=f"backlog over the last {view.filters.range}"),
                section(
                    "Dependencies",
                    _services(view),
                    id="dependencies",
                    note=f"error rate over the last {view.filters.range}",
                ),
            ],
            className="grid-2",
        ),
    ]


def _empty(view: data.Overview, configured: bool) -> html.Div:
    if not view.options.workflows:
        lines = [
            "Triage builds business transactions from spans and logs that carry a workflow's key "
            "(a PO number, an invoice number)."
            if configured
            else "No workflows are configured: add a `workflows:` section (steps, keys, SLAs) to the YAML "
            "configuration — see docs/correlation.md.",
            "Point OpenTelemetry SDKs or a Collector at the OTLP port (:4318 HTTP, :4317 gRPC); the correlator "
            "turns matching spans into transactions within seconds. `triage demo` shows a simulated hospital network.",
        ]
        return empty_state("No business transactions yet", *lines, id="overview-empty")
    return empty_state(
        "No transactions match these filters",
        f"Nothing started in the last {view.filters.range} for this workflow, facility and criticality.",
        "Widen the time range or clear a filter.",
        id="overview-empty",
    )


def _headline(view: data.Overview) -> html.Div:
    stuck = [c for c in view.counts if c.state in STUCK]
    n_stuck = sum(c.count for c in stuck)
    value = sum(c.value for c in stuck)
    critical = sum(c.count for c in stuck if c.criticality == "critical")
    open_ = sum(c.count for c in view.counts if c.state == "in_progress")
    oldest = min((c.oldest_cause for c in stuck if c.oldest_cause), default=None)
    others = view.total - n_stuck
    sentence = (
        f"{fmt.plural(n_stuck, 'transaction')} {'is' if n_stuck == 1 else 'are'} stuck now "
        f"({fmt.count(critical)} at critical facilities), holding {fmt.money(value)}; {fmt.count(others)} more "
        f"started in the last {view.filters.range} {'is' if others == 1 else 'are'} moving or done."
        if n_stuck
        else f"Nothing is stuck: {fmt.count(view.total)} transactions started in the last {view.filters.range}, "
        f"{fmt.count(open_)} still moving."
    )
    return html.Div(
        [
            html.P(sentence, className="headline", id="overview-headline"),
            html.Div(
                [
                    kpi("Stuck now", fmt.count(n_stuck), f"{fmt.count(critical)} critical", "bad" if n_stuck else "ok"),
                    kpi("Value at risk", fmt.money(value), "stalled, blocked or failed"),
                    kpi("In progress", fmt.count(open_), "moving within SLA"),
                    kpi(
                        "At risk",
                        fmt.count(len(view.at_risk)) + ("+" if len(view.at_risk) >= data.AT_RISK_ROWS else ""),
                        "likely to miss their SLA",
                        "bad" if view.at_risk else "ok",
                    ),
                    kpi("Oldest cause", fmt.ago(oldest), f"since {fmt.when(oldest)}" if oldest else "nothing stuck"),
                ],
                className="kpis",
            ),
        ]
    )


def _matrix(view: data.Overview) -> html.Table | html.Div:
    stuck = [c for c in view.counts if c.state in STUCK]
    if not stuck:
        return empty_state("Nothing stuck", "Every transaction in view is in progress or completed.")
    rows = []
    for workflow in sorted({c.workflow for c in stuck}):
        first = True
        for tier in figures.CRITICALITY_ORDER:
            mine = [c for c in stuck if (c.workflow, c.criticality) == (workflow, tier)]
            if not mine:
                continue
            cells: list[Any] = [workflow if first else "", tier]
            for state in STUCK:
                n = sum(c.count for c in mine if c.state == state)
                cells.append(html.Span(fmt.count(n), className=f"cell-{state}") if n else "·")
            cells += [fmt.count(sum(c.count for c in mine)), fmt.money(sum(c.value for c in mine))]
            rows.append(cells)
            first = False
    headers = ["workflow", "criticality", *(str(s) for s in STUCK), "total", "value"]
    return table(headers, rows, id="stuck-matrix-table", numeric=range(2, len(headers)))


def _causes(view: data.Overview) -> html.Ul | html.Div:
    if not view.causes:
        return empty_state("No causes to show", "No transaction in view is stuck.")
    items = []
    for g in view.causes:
        since = f" since {fmt.when(g.since)}" if g.since else ""
        text = (
            f"{fmt.count(g.count)} {g.workflow} stuck: {g.kind.replace('_', ' ')} on {g.component}{since}"
            f" — {fmt.money(g.value)} at risk" + (f", {g.critical} at critical facilities" if g.critical else "")
        )
        items.append(
            html.Li(
                [
                    badge(g.kind, g.kind.replace("_", " ")),
                    html.Span(text, className="cause-text"),
                    html.Span(g.detail, className="cause-detail"),
                    dcc.Link("worst case →", href=transaction_href(g.workflow, g.top_key), className="tx-link"),
                ]
            )
        )
    return html.Ul(items, className="cause-list")


def _stuck_table(view: data.Overview) -> html.Table | html.Div:
    if not view.stuck:
        return empty_state("Nothing stuck", "No stalled, blocked or failed transaction matches these filters.")
    rows = [
        [
            f"{t.priority:.1f}",
            t.workflow,
            transaction_link(t.workflow, t.key),
            f"{t.facility_name or t.facility} ({t.criticality})",
            badge(t.state),
            f"{t.current_step or '—'} → {t.next_step or '—'}",
            fmt.ago((t.cause.since if t.cause else None) or t.updated_at),
            fmt.money(t.value),
            f"{t.cause.kind.replace('_', ' ')}: {t.cause.component}" if t.cause else "—",
        ]
        for t in view.stuck
    ]
    headers = ["priority", "workflow", "key", "facility", "state", "step", "waiting", "value", "cause"]
    return table(headers, rows, id="stuck-transactions", numeric=(0, 6, 7))


def _at_risk_table(view: data.Overview) -> html.Table | html.Div:
    if not view.at_risk:
        return empty_state(
            "Nothing at risk",
            "No transaction in progress has waited longer than its step's history says still makes the SLA "
            "(or there is too little history to say; see docs/correlation.md, Breach forecasts).",
        )
    rows = []
    for t in view.at_risk:
        f = t.forecast
        rows.append(
            [
                f"{t.priority:.1f}",
                t.workflow,
                transaction_link(t.workflow, t.key),
                f"{t.facility_name or t.facility} ({t.criticality})",
                f"{t.current_step or '—'} → {t.next_step or '—'}",
                fmt.ago(t.updated_at),
                fmt.until(f.breach_at if f else t.due_at),
                fmt.when(f.next_step_eta) if f else "—",
                fmt.money(t.value),
                f.basis if f else "",
            ]
        )
    headers = ["priority", "workflow", "key", "facility", "step", "waiting", "SLA passes in", "expected", "value"]
    return table([*headers, "forecast from"], rows, id="at-risk-transactions", numeric=(0, 5, 6, 8))


def _queues(view: data.Overview) -> html.Table | html.Div:
    if not view.queues:
        return empty_state(
            "No queues reported",
            "Add `queues:` entries (RabbitMQ, NATS, Redis Streams, Prometheus exporters) or push samples to "
            "POST /api/v1/queues/samples.",
        )
    ordered = sorted(view.queues, key=lambda q: (q.status == "ok", -(q.backlog or 0)))[:12]
    rows = []
    for q in ordered:
        series = view.queue_series.get(q.name)
        rows.append(
            [
                q.name,
                badge(q.status),
                fmt.count(q.backlog) if q.backlog is not None else "—",
                fmt.duration(q.oldest_age_seconds),
                sparkline(figures.sparkline_svg(series.values), f"{q.name} backlog") if series else "",
            ]
        )
    return table(["queue", "status", "backlog", "oldest", "trend"], rows, id="queue-table", numeric=(2, 3))


def _services(view: data.Overview) -> html.Table | html.Div:
    if not view.services:
        return empty_state("No spans in this window", "Services appear here once they send OTLP traces.")
    rows = []
    for s in view.services[:12]:
        color = figures.BAD if s.worst_rate >= 0.2 else figures.WARN if s.worst_rate >= 0.05 else figures.OK
        rows.append(
            [
                s.name,
                fmt.count(s.calls),
                fmt.percent(s.errors, s.calls) if s.calls else "—",
                fmt.percent(s.caller_errors, s.caller_calls) if s.caller_calls else "—",
                sparkline(figures.sparkline_svg(s.series.values, color), f"{s.name} error rate") if s.series else "",
            ]
        )
    return table(
        ["service", "calls", "errors", "errors seen by callers", "trend"], rows, id="service-table", numeric=(1, 2, 3)
    )


dash.register_page(__name__, path="/", name="Overview", title="Triage · Operations overview", order=0, layout=layout)
