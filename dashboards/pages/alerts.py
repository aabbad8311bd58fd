"""Alerts: firing and recent alerts in business terms (workflow, facility, count, value at risk), their
history, and silences."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import dash
from dash import dcc, html

from dashboards import data
from dashboards import format as fmt
from dashboards.context import current_context
from dashboards.filters import Filters
from dashboards.queries.alerts import AlertsView
from dashboards.widgets import badge, empty_state, filter_bar, live_region, refreshes, section, table

STATUS_BADGE = {"firing": "firing", "pending": "lagging", "resolved": "ok"}


def layout(**query: Any) -> html.Div:
    filters = Filters.from_query(query)
    return html.Div(
        [
            html.H1("Alerts"),
            filter_bar(filters, fields=("range",)),
            *live_region("alerts", asdict(filters), 30_000),
        ]
    )


@refreshes("alerts")
def refresh(filters: dict[str, Any]) -> list[Any]:
    context = current_context()
    chosen = Filters.from_query(filters)
    view = data.alerts(context.store, chosen)
    if view.missing:
        return [
            empty_state(
                "Alert history is not available in this store",
                f"The tables {', '.join(view.missing)} do not exist yet: run `triage migrate` "
                "(or start `triage serve`, "
                "which migrates) with this version of Triage.",
                "Then define rules under `alerts.rules` in the configuration (see docs/alerts.md); "
                "firing alerts, their deliveries and silences show here.",
                id="alerts-missing",
            )
        ]
    return [
        section(
            "Firing and pending",
            _current(view, context.settings.alerts.rules),
            id="alert-current",
            note=f"and resolved in the last {chosen.range}",
        ),
        section("Silences", _silences(view), id="alert-silences"),
        section("History", _history(view), id="alert-history", note=f"last {chosen.range}"),
    ]


def _current(view: AlertsView, rules: list[Any]) -> html.Div | html.Table:
    if not view.current:
        hint = (
            f"{len(rules)} rule(s) are configured; none holds right now."
            if rules
            else "No alert rules are configured: add them under `alerts.rules` or enable a pack (docs/alerts.md)."
        )
        return empty_state("No alerts firing", hint, id="alerts-none")
    rows = []
    for a in view.current:
        labels = a.labels
        link = a.annotations.get("dashboard_url", "")
        summary: Any = a.annotations.get("summary") or a.rule
        if "/dashboards/" in link:
            summary = dcc.Link(summary, href="/dashboards/" + link.split("/dashboards/", 1)[1], className="tx-link")
        rows.append(
            [
                badge(STATUS_BADGE.get(a.status, "unknown"), a.status),
                a.severity,
                summary,
                labels.get("workflow", "—"),
                labels.get("facility_name") or labels.get("facility", "—"),
                fmt.count(a.count),
                fmt.money(a.value) if a.value else "—",
                fmt.when(a.fired_at or a.active_since),
                a.rule,
            ]
        )
    headers = ["status", "severity", "summary", "workflow", "facility", "count", "value at risk", "since", "rule"]
    return table(headers, rows, id="alerts-table", numeric=(5, 6))


def _silences(view: AlertsView) -> html.Div | html.Table:
    if not view.silences:
        return empty_state("Nothing is silenced", "Create a silence with POST /api/v1/silences.", id="silences-none")
    now = view.silences[0].ends_at.now(view.silences[0].ends_at.tzinfo)
    rows = [
        [
            badge(
                "ok" if s.starts_at <= now < s.ends_at else "unknown",
                "active" if s.starts_at <= now < s.ends_at else ("pending" if s.starts_at > now else "expired"),
            ),
            ", ".join(f"{m.name}{'=~' if m.is_regex else '='}{m.value}" for m in s.matchers),
            fmt.when(s.starts_at),
            fmt.when(s.ends_at),
            s.created_by,
            s.comment,
        ]
        for s in view.silences
    ]
    return table(["state", "matchers", "starts", "ends", "by", "comment"], rows, id="silences-table")


def _history(view: AlertsView) -> html.Div | html.Table:
    if not view.history:
        return empty_state("No alert activity", "Nothing fired, resolved or was delivered in this window.")
    rows = [
        [fmt.when(e.at), e.rule, e.kind, e.channel or "—", e.labels.get("workflow", "—"), e.detail[:160]]
        for e in view.history
    ]
    return table(["at", "rule", "what", "channel", "workflow", "detail"], rows, id="alert-history-table")


dash.register_page(__name__, path="/alerts", name="Alerts", title="Triage · Alerts", order=3, layout=layout)
