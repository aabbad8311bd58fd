"""Discovery: the workflow Triage proposes from the telemetry that carries a business key, drawn as a
flow (steps as nodes, transitions with counts and median waits) with the YAML to copy into the config.

Discovery reads raw telemetry, so the page runs it only when asked (the button, or a link that names
the key), and reuses an answer for a minute (dashboards.data.discovery).
"""

from __future__ import annotations

from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from correlator import DiscoveredStep, Discovery, DiscoveryEvidence
from dashboards import data
from dashboards import format as fmt
from dashboards.context import current_context
from dashboards.filters import RANGES
from dashboards.widgets import empty_state, section, table

DEFAULT_RANGE = "7d"
COLUMN_WIDTH = 160  # pixels per step: room for its label


def layout(**query: Any) -> html.Div:
    context = current_context()
    asked = query.get("key")
    given = asked.strip() if isinstance(asked, str) else ""
    configured = ",".join(context.settings.workflows[0].keys) if context.settings.workflows else ""
    asked_range = query.get("range")
    chosen = asked_range if isinstance(asked_range, str) and asked_range in RANGES else DEFAULT_RANGE
    return html.Div(
        [
            html.H1("Discover a workflow"),
            html.P(
                "Name the attribute that carries a business key (several, comma-separated, as they are tried on a "
                "span); Triage proposes the workflow its transactions follow, with the evidence.",
                className="muted",
            ),
            html.Div(
                [
                    html.Label(
                        [
                            html.Span("key attribute", className="filter-label"),
                            dcc.Input(
                                id="discover-key",
                                value=given[:500] or configured,
                                placeholder="erp.po_number,po.number",
                                debounce=True,
                                className="filter-input",
                            ),
                        ],
                        className="filter",
                    ),
                    html.Label(
                        [
                            html.Span("since", className="filter-label"),
                            dcc.Dropdown(
                                id="discover-range",
                                options=[{"label": f"last {r}", "value": r} for r in RANGES],
                                value=chosen,
                                clearable=False,
                                className="filter-dropdown",
                            ),
                        ],
                        className="filter",
                    ),
                    html.Button("Discover", id="discover-run", n_clicks=1 if given else 0, className="button"),
                ],
                className="filter-bar",
            ),
            dcc.Loading(html.Div(id="discover-content", className="content"), delay_show=300),
        ]
    )


@callback(
    Output("discover-content", "children"),
    Input("discover-run", "n_clicks"),
    State("discover-key", "value"),
    State("discover-range", "value"),
)
def render(clicks: Any, key: Any, window: Any) -> list[Any]:
    key = key.strip()[:500] if isinstance(key, str) else ""
    window = window if isinstance(window, str) and window in RANGES else DEFAULT_RANGE
    if not clicks or not key:
        return [
            empty_state(
                "Name a key attribute",
                "e.g. erp.po_number,po.number — then Discover. Spans and logs that carry it are read as they are "
                "stored, no workflow needs to be configured.",
                id="discover-empty",
            )
        ]
    context = current_context()
    view = data.discovery(context.store, context.settings, key, window)
    if view.found is None:
        return [empty_state("Nothing to propose", view.problem, id="discover-empty")]
    found = view.found
    ev = found.evidence
    return [
        html.P(_headline(ev, window), className="headline", id="discover-headline"),
        section(
            "Flow",
            html.Div(dcc.Graph(figure=flow_sankey(found), config={"displayModeBar": False}), className="wide"),
            id="discover-flow",
            note="nodes: steps, with the transactions that reached them; links: transactions and median wait",
        ),
        section(
            "Proposed workflow",
            html.Div(
                [
                    # Not dcc.Clipboard: its icon logs a React warning in every browser console.
                    html.Button("Copy", id="discover-copy", title="copy the YAML", className="copy"),
                    html.Pre(found.yaml, id="discover-yaml", className="yaml"),
                ],
                className="yaml-box",
            ),
            note="paste under workflows: in the configuration; triage check-config accepts it as it is",
        ),
        section("Evidence", _steps_table(ev), *[html.P(n, className="muted") for n in ev.notes], id="discover-steps"),
    ]


# Copies the YAML in the browser: the clipboard API where the page is a secure context (https, loopback),
# else a selection and the copy command.
dash.clientside_callback(
    """function (clicks) {
        const pre = document.getElementById("discover-yaml");
        if (!clicks || !pre) { return window.dash_clientside.no_update; }
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(pre.innerText);
        } else {
            const range = document.createRange();
            range.selectNodeContents(pre);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
            document.execCommand("copy");
        }
        return "Copied";
    }""",
    Output("discover-copy", "children"),
    Input("discover-copy", "n_clicks"),
    prevent_initial_call=True,
)


def _headline(ev: DiscoveryEvidence, window: str) -> str:
    marks = [s.mark for s in ev.steps]
    human = sum(s.human for s in ev.steps)
    return (
        f"{fmt.count(ev.transactions)} transactions carry {', '.join(ev.keys)} in the last {window}: "
        f"{fmt.plural(len(ev.steps), 'step')} proposed — {marks.count('optional')} optional, "
        f"{marks.count('conditional')} conditional, {marks.count('alternative')} on alternative paths, "
        f"{human} waiting on a person."
    )


def _steps_table(ev: DiscoveryEvidence) -> html.Table:
    rows = [
        [
            s.name,
            f"{s.service} · {s.span_name}",
            fmt.count(s.transactions),
            f"{s.share:.0%}",
            fmt.duration(s.median_seconds) if s.median_seconds is not None else "—",
            fmt.duration(s.p95_seconds) if s.p95_seconds is not None else "—",
            s.mark + (", human" if s.human else "") + (f", again ×{s.repeated}" if s.repeated else ""),
            s.reason,
        ]
        for s in ev.steps
    ]
    headers = ["step", "service · span", "reached", "share", "wait p50", "wait p95", "mark", "why"]
    return table(headers, rows, numeric=(2, 3, 4, 5))


def flow_sankey(found: Discovery) -> go.Figure:
    """Steps as nodes in the proposal's order, left to right (alternatives one above the other); each
    transition a link with its count and median wait. A transition back to an earlier step (a loop) cannot
    be drawn in a Sankey: the evidence table counts it."""
    ev = found.evidence
    names = ["start", *[s.name for s in ev.steps], "last seen"]
    index = {name: i for i, name in enumerate(names)}
    steps = {s.name: s for s in ev.steps}
    forward = [
        t
        for t in ev.transitions
        if index[t.from_step or "start"] < index[t.to_step or "last seen"] and (t.from_step or t.to_step)
    ]
    x, y = _positions(found.workflow)
    figure = go.Figure(
        go.Sankey(
            arrangement="fixed",
            node={
                "label": [_node(steps[n]) if n in steps else n for n in names],
                "x": x,
                "y": y,
                "pad": 12,
                "thickness": 14,
                "color": ["#94a3b8", *[_colour(s) for s in ev.steps], "#94a3b8"],
                "hovertemplate": "%{label}<extra></extra>",
            },
            link={
                "source": [index[t.from_step or "start"] for t in forward],
                "target": [index[t.to_step or "last seen"] for t in forward],
                "value": [t.count for t in forward],
                "customdata": [fmt.duration(t.median_seconds) if t.from_step else "—" for t in forward],
                "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} transactions · "
                "median wait %{customdata}<extra></extra>",
                "color": "rgba(100, 116, 139, 0.35)",
            },
        )
    )
    columns = len(set(x))
    figure.update_layout(
        template="plotly_white",
        width=max(900, COLUMN_WIDTH * columns),
        height=420,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        font={"family": "Inter, system-ui, sans-serif", "size": 12},
    )
    return figure


def _positions(workflow: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Where each node sits (normalized; x across, y down), in the order of the evidence's steps: a column
    per step of the flow, the branches of alternative paths one above the other."""
    placed: list[tuple[int, float]] = []  # (column, y) per step, in the flow's order
    column = 1
    for item in workflow["steps"]:
        if "one_of" not in item:
            placed.append((column, 0.5))
            column += 1
            continue
        branches = [b if isinstance(b, list) else [b] for b in item["one_of"]]
        for b, branch in enumerate(branches):
            placed += [(column + k, (b + 1) / (len(branches) + 1)) for k in range(len(branch))]
        column += max(len(b) for b in branches)
    total = column
    return [0.001, *[c / total for c, _ in placed], 0.999], [0.5, *[y for _, y in placed], 0.5]


def _colour(step: DiscoveredStep) -> str:
    if step.human:
        return "#d97706"
    return {"optional": "#64748b", "conditional": "#7c3aed", "alternative": "#0891b2"}.get(step.mark, "#2563eb")


def _node(step: DiscoveredStep) -> str:
    wait = f" · wait {fmt.duration(step.median_seconds)}" if step.median_seconds is not None else ""
    return f"{step.name}<br>{fmt.count(step.transactions)}{wait}"


dash.register_page(
    __name__, path="/discover", name="Discover", title="Triage · Discover a workflow", order=5, layout=layout
)
