"""The executive workflow-stall report as a page: the same findings and charts as the HTML/PDF document."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboards.context import current_context
from dashboards.report import PERIODS, build_report, parse_period
from dashboards.report.model import Report
from dashboards.widgets import PAGES_LOCATION, empty_state, section, table


def layout(period: str | None = None, **_: Any) -> html.Div:
    chosen = period if period in PERIODS else "7d"
    return html.Div(
        [
            html.H1("Workflow-stall report"),
            html.Div(
                [
                    html.Label(
                        [
                            html.Span("period", className="filter-label"),
                            dcc.Dropdown(
                                id="report-period",
                                options=list(PERIODS),
                                value=chosen,
                                clearable=False,
                                className="filter-dropdown",
                            ),
                        ],
                        className="filter",
                    ),
                    html.A("Download PDF", href=_document(chosen, "pdf"), className="button", id="report-pdf"),
                    html.A("Open as HTML", href=_document(chosen, "html"), className="button", target="_blank"),
                ],
                className="filter-bar",
            ),
            dcc.Loading(html.Div(id="report-content", className="content"), delay_show=400),
            html.Div(chosen, id="report-chosen", hidden=True),
        ]
    )


def _document(period: str, kind: str) -> str:
    return dash.get_relative_path("/report") + "?" + urlencode({"period": period, "format": kind})


@callback(
    Output(PAGES_LOCATION, "search", allow_duplicate=True),
    Input("report-period", "value"),
    State(PAGES_LOCATION, "search"),
    prevent_initial_call=True,
)
def period_to_url(period: str, search: str | None) -> str:
    query = "?" + urlencode({"period": period})
    if query == (search or "") or (period == "7d" and not search):
        raise dash.exceptions.PreventUpdate
    return query


@callback(Output("report-content", "children"), Input("report-chosen", "children"))
def render(period: str) -> list[Any]:
    context = current_context()
    report = build_report(context.store, context.settings, parse_period(period), charts=True)
    return _content(report)


def _content(report: Report) -> list[Any]:
    findings = html.Div([html.P(line) for line in report.summary], className="findings", id="report-summary")
    if report.empty:
        return [section(report.title, findings), empty_state("Nothing to chart", *report.empty_hint)]
    graphs = [
        section(
            chart.title,
            html.P(chart.caption, className="muted"),
            dcc.Graph(figure=chart.figure, config={"displayModeBar": False}),
        )
        for chart in report.charts
    ]
    return [
        section(report.title, findings, note=report.subtitle),
        html.Div(graphs, className="grid-2"),
        *[section(t.title, table(t.headers, t.rows, numeric=t.numeric)) for t in report.tables],
    ]


dash.register_page(
    __name__, path="/executive", name="Report", title="Triage · Workflow-stall report", order=4, layout=layout
)
