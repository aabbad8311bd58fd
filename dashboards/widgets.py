"""Building blocks every page uses: the URL-backed filter bar, KPI cards, badges, tables, empty states."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from dashboards import format as fmt
from dashboards.filters import RANGES, Filters
from triage.vocabulary import CRITICALITIES

# The page router's Location: writing its `search` re-renders the page with the new query string.
PAGES_LOCATION = "_pages_location"
FILTER = "filter"
STATUS_CLASS = {
    "ok": "ok",
    "completed": "ok",
    "in_progress": "info",
    "lagging": "warn",
    "stalled": "warn",
    "at_risk": "warn",
    "degraded": "warn",
    "blocked": "bad",
    "failed": "bad",
    "stopped": "bad",
    "failing": "bad",
    "firing": "bad",
    "unknown": "muted",
}


def filter_bar(
    filters: Filters,
    workflows: Sequence[str] = (),
    facilities: dict[str, str] | None = None,
    *,
    fields: Sequence[str] = ("range", "workflow", "facility", "criticality"),
    workflow_required: bool = False,
) -> html.Div:
    """Dropdowns whose values live in the URL's query string, so a link reproduces the view."""
    choices: dict[str, list[dict[str, str]]] = {
        "range": [{"label": f"last {r}", "value": r} for r in RANGES],
        "workflow": [{"label": w, "value": w} for w in workflows],
        "facility": [{"label": name, "value": fid} for fid, name in (facilities or {}).items()],
        "criticality": [{"label": str(c), "value": str(c)} for c in CRITICALITIES],
    }
    placeholders = {"workflow": "all workflows", "facility": "all facilities", "criticality": "any criticality"}
    controls = []
    for name in fields:
        clearable = name != "range" and not (name == "workflow" and workflow_required)
        controls.append(
            html.Label(
                [
                    html.Span(name, className="filter-label"),
                    dcc.Dropdown(
                        id={"type": FILTER, "name": name},
                        options=choices[name],  # type: ignore[arg-type]
                        value=getattr(filters, name) or None,
                        clearable=clearable,
                        placeholder=placeholders.get(name, ""),
                        className="filter-dropdown",
                    ),
                ],
                className="filter",
            )
        )
    return html.Div(controls, className="filter-bar")


@callback(
    Output(PAGES_LOCATION, "search"),
    Input({"type": FILTER, "name": ALL}, "value"),
    State({"type": FILTER, "name": ALL}, "id"),
    State(PAGES_LOCATION, "search"),
    prevent_initial_call=True,
)
def filters_to_url(values: list[Any], ids: list[dict[str, str]], search: str | None) -> str:
    """A filter changed: put every filter of the page into the query string (the router re-renders)."""
    current = Filters.from_query(dict(_parse(search or "")))
    chosen = current.with_values(**{i["name"]: v for i, v in zip(ids, values, strict=True)})
    query = chosen.query_string()
    if query == (search or ""):
        raise dash.exceptions.PreventUpdate
    return query


def _parse(search: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(search.lstrip("?"))


def kpi(title: str, value: str, note: str = "", tone: str = "") -> html.Div:
    return html.Div(
        [
            html.Div(title, className="kpi-title"),
            html.Div(value, className="kpi-value"),
            html.Div(note, className="kpi-note"),
        ],
        className=f"kpi {tone}".strip(),
    )


def badge(status: str, text: str | None = None) -> html.Span:
    return html.Span(text or status.replace("_", " "), className=f"badge {STATUS_CLASS.get(status, 'muted')}")


def empty_state(title: str, *lines: Any, id: str | None = None) -> html.Div:
    """What is missing and what to do about it."""
    props: dict[str, Any] = {"id": id} if id else {}
    return html.Div([html.H3(title), *[html.P(line) for line in lines]], className="empty-state", **props)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], id: str | None = None, numeric: Sequence[int] = ()
) -> html.Table:
    props: dict[str, Any] = {"id": id} if id else {}
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h, className="num" if i in numeric else "") for i, h in enumerate(headers)])),
            html.Tbody(
                [html.Tr([html.Td(c, className="num" if i in numeric else "") for i, c in enumerate(r)]) for r in rows]
            ),
        ],
        className="data-table",
        **props,
    )


def transaction_href(workflow: str, key: str) -> str:
    return dash.get_relative_path(f"/transaction/{quote(workflow, safe='')}/{quote(key, safe='')}")


def transaction_link(workflow: str, key: str) -> dcc.Link:
    return dcc.Link(key, href=transaction_href(workflow, key), className="tx-link")


def trace_link(trace_id: str) -> html.A | str:
    """The stored spans of a trace, from the JSON API (opens in a new tab)."""
    if not trace_id:
        return ""
    return html.A(trace_id[:12] + "…", href=f"/api/v1/traces/{trace_id}", target="_blank", title=trace_id)


def sparkline(src: str, alt: str) -> html.Img:
    return html.Img(src=src, alt=alt, className="sparkline")


def section(title: str, *children: Any, id: str | None = None, note: str = "") -> html.Section:
    props: dict[str, Any] = {"id": id} if id else {}
    head = [html.H2(title)] + ([html.Span(note, className="section-note")] if note else [])
    return html.Section([html.Div(head, className="section-head"), *children], className="card", **props)


def live_region(page: str, state: dict[str, str], every_ms: int) -> list[Any]:
    """The part of a page its callback fills, refreshed every `every_ms`: the page's state, a timer, the content.

    The ids are `{page}-state`, `{page}-refresh` and `{page}-content`; `refreshes(page)` fills it.
    """
    return [
        dcc.Store(id=f"{page}-state", data=state),
        dcc.Interval(id=f"{page}-refresh", interval=every_ms),
        dcc.Loading(html.Div(id=f"{page}-content", className="content"), delay_show=400),
    ]


def refreshes(page: str) -> Callable[[Callable[[dict[str, Any]], list[Any]]], Callable[[dict[str, Any]], list[Any]]]:
    """Register `render(state)` as the callback that fills the page's live region (on load and each tick).

    A state that is not a mapping (a hand-made post) renders as the page's defaults.
    """

    def register(render: Callable[[dict[str, Any]], list[Any]]) -> Callable[[dict[str, Any]], list[Any]]:
        @callback(
            Output(f"{page}-content", "children"),
            Input(f"{page}-refresh", "n_intervals"),
            State(f"{page}-state", "data"),
        )
        def refresh(_: int | None, state: Any) -> list[Any]:
            return render(state if isinstance(state, dict) else {})

        return render

    return register


def queue_cells(q: Any) -> list[Any]:
    """The first cells of a queue's row wherever queues are listed: name, system, status, backlog, consumers."""
    return [
        q.name,
        q.system,
        badge(q.status),
        fmt.count(q.backlog) if q.backlog is not None else "—",
        q.consumers if q.consumers is not None else "—",
    ]
