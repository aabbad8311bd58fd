"""Workflow view: the flow of steps with counts and step times, where work is stuck, cycle times, throughput."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import dash
from dash import dcc, html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.context import current_context
from dashboards.filters import Filters
from dashboards.widgets import empty_state, filter_bar, kpi, live_region, refreshes, section, table
from triage.vocabulary import STUCK


def layout(**query: Any) -> html.Div:
    filters = Filters.from_query(query)
    context = current_context()
    options = data.options(context.store, context.settings)
    if not filters.workflow and options.workflows:
        filters = filters.with_values(workflow=options.workflows[0])
    return html.Div(
        [
            html.H1("Workflow"),
            filter_bar(filters, options.workflows, options.facilities, workflow_required=True),
            *live_region("workflow", asdict(filters), 60_000),
        ]
    )


@refreshes("workflow")
def refresh(filters: dict[str, Any]) -> list[Any]:
    context = current_context()
    view = data.workflow_view(context.store, context.settings, Filters.from_query(filters))
    name = view.filters.workflow
    if not name:
        return [
            empty_state(
                "No workflows yet",
                "Configure `workflows:` (steps, keys, SLAs; see docs/correlation.md) and send spans that carry "
                "their keys; each workflow's flow appears here.",
                id="workflow-empty",
            )
        ]
    started = sum(view.throughput.started)
    target = _target(view)
    stuck = [s for s in view.step_states if s.state in STUCK]
    content: list[Any] = [
        html.P(
            f"{fmt.label(name)}: {fmt.count(started)} started and {fmt.count(view.cycle_times.count)} completed in the "
            f"last {view.filters.range}; {fmt.count(sum(s.count for s in stuck))} of those started are stuck now.",
            className="headline",
            id="workflow-headline",
        ),
        html.Div(
            [
                kpi("Median cycle time", fmt.duration(view.cycle_times.p50) if view.cycle_times.count else "—"),
                kpi("p95 cycle time", fmt.duration(view.cycle_times.p95) if view.cycle_times.count else "—"),
                kpi("Target", fmt.duration(target) if target else "none", "sum of step SLAs (normal tier)"),
            ],
            className="kpis",
        ),
    ]
    if not view.transitions and not view.step_states:
        content.append(
            empty_state(
                f"No {name} transactions in the last {view.filters.range}",
                "Widen the time range, or check that spans carry this workflow's key attributes.",
                id="workflow-empty",
            )
        )
        return content
    content += [
        section(
            "Flow",
            dcc.Graph(
                figure=figures.flow_diagram(view.definition, view.transitions, view.step_states),
                config={"displayModeBar": False},
            ),
            id="flow",
            note="edges: transactions · median · p95 step time; red: where transactions are stuck",
        ),
        section("Where transactions are stuck", _stuck_table(view), id="stuck-by-step"),
        html.Div(
            [
                section(
                    "Cycle time",
                    dcc.Graph(
                        figure=figures.cycle_time_histogram(view.cycle_times, target), config={"displayModeBar": False}
                    ),
                ),
                section(
                    "Throughput",
                    dcc.Graph(figure=figures.throughput_chart(view.throughput), config={"displayModeBar": False}),
                ),
            ],
            className="grid-2",
        ),
    ]
    return content


def _target(view: data.WorkflowView) -> float | None:
    if view.definition is None:
        return None
    slas = [s.sla.for_criticality("normal") for s in view.definition.steps if s.sla]
    total = sum(x for x in slas if x)
    return total or None


def _stuck_table(view: data.WorkflowView) -> html.Table | html.Div:
    stuck = sorted((s for s in view.step_states if s.state in STUCK), key=lambda s: -s.count)
    if not stuck:
        return empty_state("Nothing stuck", "Every transaction of this workflow is moving or done.")
    rows = [[s.current_step or "—", s.next_step or "—", s.state, fmt.count(s.count), fmt.money(s.value)] for s in stuck]
    return table(["at step", "waiting for", "state", "transactions", "value"], rows, numeric=(3, 4))


dash.register_page(__name__, path="/workflow", name="Workflows", title="Triage · Workflow", order=1, layout=layout)
