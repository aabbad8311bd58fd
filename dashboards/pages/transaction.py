"""Transaction drill-down: the step timeline against SLAs, each hop with its trace, logs, cause and queue."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import dash
from dash import dcc, html

from correlator import CauseRecord, Transaction
from dashboards import data, figures
from dashboards import format as fmt
from dashboards.context import current_context
from dashboards.widgets import (
    badge,
    empty_state,
    live_region,
    queue_cells,
    refreshes,
    section,
    sparkline,
    table,
    trace_link,
)


def layout(workflow: str | None = None, key: str | None = None, **_: Any) -> html.Div:
    ident = {"workflow": unquote(workflow or ""), "key": unquote(key or "")}
    return html.Div(
        [
            dcc.Link("← overview", href=dash.get_relative_path("/"), className="back"),
            *live_region("transaction", ident, 60_000),
        ]
    )


@refreshes("transaction")
def refresh(ident: dict[str, Any]) -> list[Any]:
    context = current_context()
    view = data.transaction_view(
        context.store, context.settings, str(ident.get("workflow", "")), str(ident.get("key", ""))
    )
    if view.detail is None:
        return [
            empty_state(
                f"No {view.workflow or 'such'} transaction with key {view.key!r}",
                "It may not be correlated yet (the correlator runs every few seconds), it may be older than the "
                "retention, or the key may be mistyped.",
                dcc.Link("Back to the overview", href=dash.get_relative_path("/")),
                id="transaction-missing",
            )
        ]
    d = view.detail
    tx = d.transaction
    return [
        _header(view),
        section(
            "Steps against their SLAs",
            dcc.Graph(figure=figures.step_timeline(view.definition, d.events, tx), config={"displayModeBar": False}),
            id="timeline",
            note="bar = time from the previous step; red = past its SLA; | = SLA due",
        ),
        section("Cause", _causes(d.causes), id="causes"),
        section("Queue it waits in", _queues(view), id="waiting-queue") if view.queues else html.Div(),
        section("Hops", _hops(view), id="hops", note=f"{len(d.events)} events from {len(d.trace_ids)} traces"),
        section("Logs", _logs(view), id="logs"),
    ]


def _header(view: data.TransactionView) -> html.Div:
    assert view.detail is not None
    tx = view.detail.transaction
    waiting = ""
    if tx.state != "completed" and tx.next_step:
        due = f", due {fmt.when(tx.due_at)}" if tx.due_at else ""
        waiting = f"; waiting {fmt.ago(tx.updated_at)} for {tx.next_step}{due}"
    facts = (
        f"{tx.facility_name or tx.facility or 'unknown facility'} ({tx.criticality}) · {fmt.money(tx.value)} · "
        f"started {fmt.when(tx.started_at)} · at {tx.current_step or 'no step yet'}{waiting}"
    )
    cause = (
        f"{tx.state.capitalize()}: {tx.cause.kind.replace('_', ' ')} on {tx.cause.component} — {tx.cause.detail}"
        if tx.cause
        else ""
    )
    return html.Div(
        [
            html.H1([f"{tx.key} ", html.Small(tx.workflow), " ", badge(tx.state)], id="transaction-title"),
            html.P(facts, className="headline"),
            html.P(cause, className="cause-line", id="transaction-cause") if cause else html.Div(),
            _forecast(tx),
            html.P(f"priority {tx.priority:.1f}", className="muted"),
        ]
    )


def _forecast(tx: Transaction) -> html.P | html.Div:
    """The breach forecast: when the next step is expected, when the SLA passes, whether it is likely missed."""
    f = tx.forecast
    if f is None:
        return html.Div()
    expected = f"{tx.next_step or 'next step'} expected by {fmt.when(f.next_step_eta)}"
    breach = f"; SLA passes {fmt.when(f.breach_at)} (in {fmt.until(f.breach_at)})" if f.breach_at else ""
    risk = ""
    if f.at_risk:
        risk = f"At risk since {fmt.when(f.risk_at)}: likely to miss its SLA. "
    elif f.risk_at and f.breach_at and tx.state == "in_progress":
        risk = f"On track; at risk from {fmt.when(f.risk_at)} if still waiting. "
    return html.P(
        [badge("at_risk") if f.at_risk else "", f" {risk}{expected}{breach}. ", html.Small(f.basis)],
        className="forecast-line",
        id="transaction-forecast",
    )


def _causes(causes: list[CauseRecord]) -> html.Div:
    if not causes:
        return empty_state("No cause recorded", "Triage names a cause once a transaction stalls, blocks or fails.")
    items = []
    for c in causes:
        traces = [trace_link(t) for t in c.evidence.get("trace_ids", []) if isinstance(t, str)]
        evidence = {k: v for k, v in c.evidence.items() if k != "trace_ids"}
        items.append(
            html.Div(
                [
                    html.Div(
                        [
                            badge(c.kind if c.active else "completed", c.kind.replace("_", " ")),
                            html.B(f" {c.component} "),
                            html.Span("active" if c.active else "resolved", className="muted"),
                            html.Span(f" since {fmt.when(c.since)}" if c.since else ""),
                        ]
                    ),
                    html.P(c.detail),
                    html.Div(["traces: ", *traces], className="evidence-traces") if traces else html.Div(),
                    html.Pre(json.dumps(evidence, indent=2, default=str), className="evidence") if evidence else "",
                ],
                className="cause-record",
            )
        )
    return html.Div(items)


def _queues(view: data.TransactionView) -> html.Table:
    rows = []
    for q in view.queues:
        series = view.queue_series.get(q.name)
        rows.append(
            [
                *queue_cells(q),
                fmt.duration(q.oldest_age_seconds),
                q.detail,
                sparkline(figures.sparkline_svg(series.values), "backlog") if series else "",
            ]
        )
    return table(
        ["queue", "system", "status", "backlog", "consumers", "oldest", "why", "backlog trend"], rows, numeric=(3, 4, 5)
    )


def _hops(view: data.TransactionView) -> html.Table | html.Div:
    assert view.detail is not None
    if not view.detail.events:
        return empty_state("No events", "No span or log of this transaction is stored any more.")
    rows = [
        [
            fmt.when(e.at),
            e.step or "—",
            e.service,
            e.kind or e.source,
            badge("failed" if e.failure or e.status == "error" else "ok", "error" if e.status == "error" else e.status),
            e.peer or e.destination or "",
            e.detail[:160],
            trace_link(e.trace_id),
        ]
        for e in view.detail.events
    ]
    return table(["at", "step", "service", "kind", "status", "peer / queue", "detail", "trace"], rows, id="hops-table")


def _logs(view: data.TransactionView) -> html.Table | html.Div:
    assert view.detail is not None
    if not view.detail.logs:
        return empty_state("No logs joined", "No stored log line carries one of this transaction's trace ids.")
    rows = [[fmt.when(g.at), g.severity, g.service, g.body[:300], trace_link(g.trace_id)] for g in view.detail.logs]
    return table(["at", "severity", "service", "message", "trace"], rows, id="logs-table")


dash.register_page(
    __name__,
    path_template="/transaction/<workflow>/<key>",
    name="Transaction",
    title=lambda workflow=None, key=None: f"Triage · {unquote(key or '')}",
    layout=layout,
)
