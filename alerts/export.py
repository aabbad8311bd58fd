"""`triage rules export --format prometheus`: Triage rules as Prometheus alerting rules over the
gauges on /metrics (triage_stuck_transactions*, triage_queue_status, triage_dependency_*).

A rule whose conditions the gauges cannot express (per-transaction value, step, period close,
overdue, key grouping, non-stuck states) is left out and named in the file's header and in the
returned list, so that nobody believes a Prometheus rule covers it.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote

import yaml

from alerts.language import AlertRule
from alerts.templates import base_url
from triage.settings import Settings
from triage.vocabulary import STUCK, CauseKind

_STUCK_LABELS = ["workflow", "state", "facility", "criticality", "cause_kind", "cause_component"]
_ANY = {
    "workflow": "any workflow",
    "state": "stuck",
    "facility": "any facility",
    "facility_name": "any facility",
    "criticality": "any criticality",
    "cause_kind": "any cause",
    "cause_component": "any component",
    "queue": "a queue",
    "queue_status": "stuck",
    "service": "a service",
}
_DEFAULT = {
    "queue": "queue {queue} is {queue_status}",
    "dependency": "{service} fails {error_rate} of calls",
}


def duration(seconds: float) -> str:
    """Seconds in Prometheus' duration syntax: 300 → 5m, 1.5 → 1500ms."""
    if seconds != int(seconds):
        return f"{int(round(seconds * 1000))}ms"
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _quote(text: str) -> str:
    return json.dumps(text)


def _selector(matchers: dict[str, list[str]]) -> str:
    """A PromQL label selector; empty when nothing is filtered."""
    parts = []
    for label, values in matchers.items():
        if len(values) == 1:
            parts.append(f"{label}={_quote(values[0])}")
        elif values:
            parts.append(f"{label}=~{_quote('|'.join(re.escape(v) for v in values))}")
    return "{" + ",".join(parts) + "}" if parts else ""


def _by(labels: list[str]) -> str:
    """`by (...)`; facility_name rides along with facility (one name per id) for readable annotations."""
    labels = labels + ["facility_name"] if "facility" in labels else labels
    return f" by ({', '.join(labels)})" if labels else ""


UNKNOWN = "(see dashboard)"


class _Skip(Exception):
    """The rule cannot be expressed over the gauges; the message says why."""


def _transactions(rule: AlertRule) -> tuple[str, str]:
    w = rule.when
    unsupported = [
        c for c in ("step", "min_value", "period_close_within", "overdue", "at_risk") if getattr(w, c) is not None
    ]
    unsupported += [f"group_by {g}" for g in rule.grouping if g not in _STUCK_LABELS]
    unsupported += [f"state {s}" for s in w.state or [] if s not in STUCK]
    if w.min_age is not None and (w.count_over or w.value_at_risk_over is not None):
        unsupported.append("min_age together with count_over/value_at_risk_over")
    if unsupported:
        raise _Skip(f"uses {', '.join(unsupported)}, which the exported gauges do not carry")
    sel = _selector(
        {
            "workflow": w.workflow or [],
            "state": list(w.state or []),
            "facility": w.facility or [],
            "criticality": list(w.criticality or []),
            "cause_kind": list(w.cause_kind or []),
            "cause_component": w.cause_component or [],
        }
    )
    by = _by(rule.grouping)
    if w.min_age is not None:
        return f"max{by} (triage_stuck_transactions_oldest_seconds{sel}) > {w.min_age:g}", "age"
    count = f"sum{by} (triage_stuck_transactions{sel}) > {w.count_over or 0}"
    if w.value_at_risk_over is None:
        return count, "count"
    value = f"sum{by} (triage_stuck_transactions_value{sel}) > {w.value_at_risk_over:g}"
    return (f"{value} and on({', '.join(rule.grouping)}) ({count})" if w.count_over else value), "value"


def _queues(rule: AlertRule) -> tuple[str, str]:
    w = rule.when
    if rule.grouping not in (["queue"], []):
        raise _Skip("groups by more than the queue, which the exported gauges do not carry")
    by = _by(rule.grouping)
    sel = _selector({"queue": w.queue or [], "status": list(w.queue_status or [])})
    expr = f"max{by} (triage_queue_status{sel}) == 1"
    if w.min_backlog is not None:
        backlog = f"max{by} (triage_queue_backlog{_selector({'queue': w.queue or []})}) >= {w.min_backlog}"
        expr = backlog if w.queue_status is None else f"({expr}) and on({', '.join(rule.grouping)}) ({backlog})"
    return expr, "queue"


def _dependencies(rule: AlertRule, settings: Settings) -> tuple[str, str]:
    w = rule.when
    if w.window is not None and w.window != settings.alerts.signal_window:
        raise _Skip(f"window {w.window:g}s differs from alerts.signal_window ({settings.alerts.signal_window:g}s)")
    if rule.grouping != ["service"]:
        raise _Skip("does not group by service")
    sel = _selector({"service": w.service or []})
    calls = f"triage_dependency_calls{sel} >= {w.min_calls or 5}"
    return f"triage_dependency_error_ratio{sel} > {w.error_rate_over or 0:g} and on(service) ({calls})", "dependency"


def _field(name: str, rule: AlertRule, measure: str, settings: Settings) -> str:
    """A template placeholder as Prometheus template text."""
    pinned = rule.when.pinned()
    label = {"queue_status": "status"}.get(name, name)
    if label in rule.grouping or (label == "facility_name" and "facility" in rule.grouping):
        return f"{{{{ $labels.{label} }}}}"
    if name == "queue_status" and rule.when.queue_status and len(rule.when.queue_status) == 1:
        return rule.when.queue_status[0]
    if label in pinned or (name == "facility_name" and "facility" in pinned):
        return pinned[label if label in pinned else "facility"]
    value = {
        ("count", "count"): "{{ $value }}",
        ("value", "value"): "${{ $value | humanize }}",
        ("value_at_risk", "value"): "${{ $value | humanize }}",
        ("age", "age"): "{{ $value | humanizeDuration }}",
        ("error_rate", "dependency"): "{{ $value | humanizePercentage }}",
    }.get((name, measure))
    if value:
        return value
    if name in ("rule", "severity"):
        return rule.name if name == "rule" else rule.severity
    if name == "dashboard_url":
        return _dashboard(rule, settings)
    return _ANY.get(name, UNKNOWN)


def _dashboard(rule: AlertRule, settings: Settings) -> str:
    """The overview filtered like the alert; label values are URL-quoted by the template."""
    pinned, params = rule.when.pinned(), []
    for label, param in (
        ("workflow", "workflow"),
        ("facility", "facility"),
        ("state", "state"),
        ("cause_kind", "cause"),
    ):
        if label in rule.grouping and rule.kind == "transactions":
            params.append(f"{param}={{{{ $labels.{label} | urlquery }}}}")
        elif label in pinned:
            params.append(f"{param}={quote(pinned[label], safe='')}")
    return base_url(settings) + "/dashboards/" + ("?" + "&".join(params) if params else "")


def _default_summary(rule: AlertRule, measure: str) -> str:
    """A summary that names only what the alert's labels know."""
    if measure in ("queue", "dependency"):
        return _DEFAULT[measure]
    known = set(rule.grouping) | set(rule.when.pinned())
    what = "{workflow} transactions" if "workflow" in known else "transactions"
    where = " at {facility_name}" if "facility" in known else ""
    state = "{state}" if "state" in known else "stuck"
    cause = ": {cause_kind} on {cause_component}" if {"cause_kind", "cause_component"} <= known else ""
    if measure == "value":
        return f"{{value}} at risk in {what} {state}{where}{cause}"
    if measure == "age":
        return f"{what} {state} for {{age}}{where}{cause}"
    return f"{{count}} {what} {state}{where}{cause}"


def _template(template: str, rule: AlertRule, measure: str, settings: Settings) -> str:
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(_field(name, rule, measure, settings))
    return "".join(out)


def _rule(rule: AlertRule, settings: Settings) -> dict[str, Any]:
    if rule.kind == "queues":
        expr, measure = _queues(rule)
    elif rule.kind == "dependencies":
        expr, measure = _dependencies(rule, settings)
    else:
        expr, measure = _transactions(rule)
    labels = {k: v for k, v in rule.when.pinned().items() if k not in rule.grouping}
    if rule.kind == "queues":
        labels["cause_kind"] = str(CauseKind.QUEUE_BACKLOG)
        if "queue" in rule.grouping:
            labels["cause_component"] = "{{ $labels.queue }}"
    elif rule.kind == "dependencies":
        labels.update(cause_kind=str(CauseKind.DEPENDENCY_ERROR), cause_component="{{ $labels.service }}")
    labels.update(severity=rule.severity, **rule.labels)
    summary = _template(rule.summary, rule, measure, settings) if rule.summary else UNKNOWN
    if UNKNOWN in summary:  # the rule's summary needs fields Prometheus does not have
        summary = _template(_default_summary(rule, measure), rule, measure, settings)
    annotations = {"summary": summary, "dashboard_url": _dashboard(rule, settings)}
    if measure in ("count", "value"):
        annotations[{"count": "count", "value": "value_at_risk"}[measure]] = "{{ $value }}"
    description = _template(rule.description, rule, measure, settings) if rule.description else UNKNOWN
    if UNKNOWN not in description:
        annotations["description"] = description
    for name, template in rule.annotations.items():
        annotations[name] = _template(template, rule, measure, settings)
    out: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if rule.for_:
        out["for"] = duration(rule.for_)
    out.update(labels=labels, annotations=annotations)
    return out


def export_prometheus(rules: list[AlertRule], settings: Settings, group: str = "triage") -> tuple[str, list[str]]:
    """A Prometheus rule file (YAML) and the rules left out, each with its reason."""
    exported, skipped = [], []
    for rule in rules:
        try:
            exported.append(_rule(rule, settings))
        except _Skip as why:
            skipped.append(f"{rule.name}: {why}")
    header = [
        "# Prometheus alerting rules generated by `triage rules export --format prometheus`.",
        "# They read the gauges Triage exports on /metrics; scrape it at least every alerts.interval.",
    ]
    header += [f"# not exported: {s}" for s in skipped]
    body = yaml.safe_dump(
        {"groups": [{"name": group, "rules": exported}]}, sort_keys=False, allow_unicode=True, width=1000
    )
    return "\n".join(header) + "\n" + body, skipped
