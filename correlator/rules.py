"""Workflow definitions turned into parameterized ClickHouse SQL: key extraction and step matching.

The structure of every statement comes from this module; every value that comes from the
configuration (attribute names, service names, patterns) is bound as a `{pN:Type}` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triage.settings import KeyFormat, StepMatch, Workflow

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


def _split_expr(fmt: KeyFormat, params: Params, value: str) -> str:
    """The keys one attribute value lists: a JSON array (an OTLP ArrayValue as stored), else the value
    split on the workflow's separators (KeyFormat.split_keys in Python)."""
    if not fmt.split:
        return f"[{value}]"
    listed = f"arrayMap(x -> if(startsWith(x, '\"'), JSONExtractString(x), x), JSONExtractArrayRaw({value}))"
    return (
        f"if(startsWith({value}, '[') AND isValidJSON({value}) AND JSONType({value}) = 'Array', {listed}, "
        f"splitByRegexp({params.add(fmt.split)}, {value}))"
    )


def canonical_keys_expr(fmt: KeyFormat, params: Params, keys: str) -> str:
    """The Array(String) `keys` in the workflow's canonical form, without empties or repeats (the same
    as KeyFormat.canonical in Python, which the API uses on a key given in a URL)."""
    x = "trimBoth(x, ' \\t\\n\\r\\f\\v')"
    if fmt.case == "upper":
        x = f"upperUTF8({x})"
    elif fmt.case == "lower":
        x = f"lowerUTF8({x})"
    out = f"arrayMap(x -> {x}, {keys})"
    if fmt.strip_prefixes:
        branches = []
        for prefix in fmt.strip_prefixes:
            cased = prefix.upper() if fmt.case == "upper" else prefix.lower() if fmt.case == "lower" else prefix
            if cased:
                ref = params.add(cased)
                branches.append(
                    f"startsWith(x, {ref}), trimBoth(substringUTF8(x, lengthUTF8({ref}) + 1), ' \\t\\n\\r\\f\\v')"
                )
        if branches:
            out = f"arrayMap(x -> multiIf({', '.join(branches)}, x), {out})"
    if fmt.strip_leading_zeros:
        out = f"arrayMap(x -> replaceRegexpOne(x, '^0+(.)', '\\\\1'), {out})"
    if fmt.pad_to is not None:
        width = params.add(fmt.pad_to, "UInt16")
        out = f"arrayMap(x -> if(x != '' AND lengthUTF8(x) < {width}, leftPadUTF8(x, {width}, '0'), x), {out})"
    return f"arrayDistinct(arrayFilter(x -> x != '', {out}))"


def _first_attribute(keys: list[str], params: Params, attrs: str) -> str:
    branches = []
    for key in keys:
        ref = f"{attrs}[{params.add(key)}]"
        branches.append(f"{ref} != '', {ref}")
    return f"multiIf({', '.join(branches)}, '')" if branches else "''"


def span_keys_expr(workflow: Workflow, params: Params, attrs: str = "SpanAttributes") -> str:
    """Every key a span names, canonical: from the first non-empty key attribute in the workflow's order
    (one key, a list of them, or an array), else none."""
    value = _first_attribute(workflow.keys, params, attrs)
    fmt = workflow.key_format
    # Most spans name no key: they skip the array work (ClickHouse computes `value` once).
    keys = canonical_keys_expr(fmt, params, _split_expr(fmt, params, value))
    return f"if({value} = '', CAST([], 'Array(String)'), {keys})"


def log_keys_expr(workflow: Workflow, params: Params, attrs: str = "LogAttributes", body: str = "Body") -> str:
    """Every key a log record names, canonical: from a key attribute, else every match of every key
    pattern in its body."""
    fmt = workflow.key_format
    value = _first_attribute(workflow.keys, params, attrs)
    found = [f"extractAll({body}, {params.add(pattern)})" for pattern in workflow.key_patterns]
    from_body = f"arrayConcat({', '.join(found)})" if len(found) > 1 else (found[0] if found else "[]")
    raw = f"if({value} != '', {_split_expr(fmt, params, value)}, {from_body})" if workflow.keys else from_body
    return canonical_keys_expr(fmt, params, f"CAST({raw}, 'Array(String)')")


def own_keys_expr(workflows: list[Workflow], params: Params, kind: str) -> str:
    """Per joined row (its Workflow column), the keys the row itself names; [] when it names none."""
    branches = []
    for workflow in workflows:
        keys = (
            span_keys_expr(workflow, params, "s.SpanAttributes")
            if kind == "span"
            else log_keys_expr(workflow, params, "l.LogAttributes", "l.Body")
        )
        branches.append(f"k.Workflow = {params.add(workflow.name)}, {keys}")
    return f"multiIf({', '.join(branches)}, CAST([], 'Array(String)'))" if branches else "CAST([], 'Array(String)')"


def condition_attributes_expr(workflows: list[Workflow], params: Params, attrs: str) -> str:
    """The attributes that `when:` conditions name, from a row's attribute map (Map(String, String))."""
    names = sorted({n for w in workflows for s in w.steps if s.when for n in s.when.attributes})
    if not names:
        return "CAST(map(), 'Map(String, String)')"
    return f"mapFilter((n, v) -> has({params.add(names, 'Array(String)')}, n), {attrs})"


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
