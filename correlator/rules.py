"""Workflow definitions turned into parameterized ClickHouse SQL: key extraction and step matching.

The structure of every statement comes from this module; every value that comes from the
configuration (attribute names, service names, patterns) is bound as a `{pN:Type}` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triage.settings import StepMatch, Workflow

_KINDS = {
    "internal": "Internal",
    "server": "Server",
    "client": "Client",
    "producer": "Producer",
    "consumer": "Consumer",
}


@dataclass
class Params:
    """Collects bound parameters and hands out their placeholders."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, type_: str = "String") -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"


def span_key_expr(workflow: Workflow, params: Params, attrs: str = "SpanAttributes") -> str:
    """The first non-empty key attribute of a span, in the workflow's order, else ''."""
    branches = []
    for key in workflow.keys:
        ref = f"{attrs}[{params.add(key)}]"
        branches.append(f"{ref} != '', {ref}")
    return f"multiIf({', '.join(branches)}, '')" if branches else "''"


def log_key_expr(workflow: Workflow, params: Params) -> str:
    """A log's key: a key attribute, else the first key pattern's capture in the body, else ''."""
    branches = []
    for key in workflow.keys:
        ref = f"LogAttributes[{params.add(key)}]"
        branches.append(f"{ref} != '', {ref}")
    for pattern in workflow.key_patterns:
        extracted = f"extract(Body, {params.add(pattern)})"
        branches.append(f"{extracted} != '', {extracted}")
    return f"multiIf({', '.join(branches)}, '')" if branches else "''"


def span_match_expr(match: StepMatch, params: Params) -> str | None:
    """A boolean over otel_traces columns for a step matcher; None when it cannot match spans."""
    if match.log_pattern and not (match.span_name or match.service or match.kind or match.attributes):
        return None
    terms = []
    if match.span_name:
        terms.append(f"SpanName = {params.add(match.span_name)}")
    if match.service:
        terms.append(f"ServiceName = {params.add(match.service)}")
    if match.kind:
        terms.append(f"SpanKind = {params.add(_KINDS[match.kind])}")
    for key, value in match.attributes.items():
        terms.append(f"SpanAttributes[{params.add(key)}] = {params.add(str(value))}")
    return " AND ".join(terms) if terms else None


def log_match_expr(match: StepMatch, params: Params) -> str | None:
    """A boolean over otel_logs columns for a step matcher that names a log pattern."""
    if not match.log_pattern:
        return None
    terms = [f"match(Body, {params.add(match.log_pattern)})"]
    if match.service:
        terms.append(f"ServiceName = {params.add(match.service)}")
    for key, value in match.attributes.items():
        terms.append(f"LogAttributes[{params.add(key)}] = {params.add(str(value))}")
    return " AND ".join(terms)


def step_expr(workflows: list[Workflow], params: Params, kind: str) -> str:
    """multiIf over (Workflow, matcher) → step name for a joined row; '' when no step matches."""
    branches = []
    for workflow in workflows:
        wf = params.add(workflow.name)
        for step in workflow.steps:
            expr = span_match_expr(step.match, params) if kind == "span" else log_match_expr(step.match, params)
            if expr:
                branches.append(f"Workflow = {wf} AND ({expr}), {params.add(step.name)}")
    return f"multiIf({', '.join(branches)}, '')" if branches else "''"


def failure_expr(workflows: list[Workflow], params: Params, kind: str, patterns: list[str]) -> str:
    """1 when a row is a permanent failure: a step's `failure` matcher, or a transformation error text."""
    terms = []
    text = "StatusMessage" if kind == "span" else "Body"
    for pattern in patterns:
        terms.append(f"match({text}, {params.add(pattern)})")
    for workflow in workflows:
        wf = params.add(workflow.name)
        for step in workflow.steps:
            if step.failure is None:
                continue
            expr = span_match_expr(step.failure, params) if kind == "span" else log_match_expr(step.failure, params)
            if expr:
                terms.append(f"(Workflow = {wf} AND ({expr}))")
    return f"toUInt8({' OR '.join(terms)})" if terms else "toUInt8(0)"


def attribute_expr(workflows: list[Workflow], params: Params, which: str, attrs: str) -> str:
    """Per-workflow attribute (facility or value) of a row: the configured attribute's value, else ''."""
    branches = []
    for workflow in workflows:
        name = getattr(workflow, which)
        if name:
            branches.append(f"Workflow = {params.add(workflow.name)}, {attrs}[{params.add(name)}]")
    return f"multiIf({', '.join(branches)}, '')" if branches else "''"
