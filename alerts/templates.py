"""Annotation templates: business context first (workflow, facility, value, cause), links to the dashboards."""

from __future__ import annotations

import string
from datetime import datetime
from urllib.parse import quote, urlencode

from alerts.alert import Match
from alerts.language import AlertRule
from triage.durations import format_duration
from triage.settings import Settings

DEFAULT_SUMMARY = {
    "transactions": "{count} {workflow} {state} at {facility_name}: {top_cause} ({value} at risk)",
    "queues": "queue {queue} is {queue_status} (backlog {backlog}, oldest {oldest_age}); "
    "{count} stuck transactions ({value}) wait on it",
    "dependencies": "{service} fails {error_rate} of calls ({detail}); {count} stuck transactions ({value}) wait on it",
}
DEFAULT_DESCRIPTION = {
    "transactions": "{keys}",
    "queues": "{detail}",
    "dependencies": "{errors} of {calls} calls failed since {since}",
}
PLURALS = {
    "workflow": "workflows",
    "state": "states",
    "facility": "facilities",
    "facility_name": "facilities",
    "criticality": "criticalities",
    "cause_kind": "causes",
    "cause_component": "components",
    "step": "steps",
    "queue": "queues",
    "service": "services",
    "system": "systems",
    "queue_status": "statuses",
}
CAP = 6  # distinct values collected per field; more shows as "6+ facilities"


def money(value: float) -> str:
    return f"${value:,.0f}"


def when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "unknown"


def age(at: datetime | None, now: datetime) -> str:
    return format_duration(max(0.0, (now - at).total_seconds())) if at else "unknown"


def one_or_count(name: str, values: list[str]) -> str:
    """The value when a group has exactly one, else "3 facilities" (what a summary can say)."""
    distinct = sorted({v for v in values if v})
    if len(distinct) == 1:
        return distinct[0]
    if not distinct:
        return "none"
    more = "+" if len(distinct) >= CAP else ""
    return f"{len(distinct)}{more} {PLURALS.get(name, name + 's')}"


def base_url(settings: Settings) -> str:
    """Where users reach this Triage: `alerts.external_url`, else the API's host and port."""
    if settings.alerts.external_url:
        return settings.alerts.external_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


def transaction_path(workflow: str, key: str) -> str:
    return f"/dashboards/transaction/{quote(workflow, safe='')}/{quote(key, safe='')}"


def overview_path(filters: dict[str, str]) -> str:
    """The ops overview filtered to a group: /dashboards/?workflow=...&facility=...&cause=..."""
    names = {"cause_kind": "cause", "cause_component": "component"}
    query = {names.get(k, k): v for k, v in filters.items() if v and k not in ("severity", "alertname")}
    return "/dashboards/" + (f"?{urlencode(sorted(query.items()))}" if query else "")


def render(template: str, context: dict[str, str]) -> str:
    """Fill {field}s; rules are validated against the fields their kind has, so all are present."""
    return string.Formatter().vformat(template, (), _Defaulting(context))


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def annotate(rule: AlertRule, match: Match, settings: Settings) -> dict[str, str]:
    """summary, description, count, value_at_risk, dashboard_url and the rule's own annotations."""
    url = base_url(settings) + match.dashboard_path
    context = {
        **match.context,
        "rule": rule.name,
        "severity": rule.severity,
        "count": f"{match.count:,}",
        "value": money(match.value),
        "value_at_risk": money(match.value),
        "dashboard_url": url,
    }
    out = {
        "summary": render(rule.summary or DEFAULT_SUMMARY[rule.kind], context),
        "description": render(rule.description or DEFAULT_DESCRIPTION[rule.kind], context),
        "count": str(match.count),
        "value_at_risk": f"{match.value:.2f}",
        "dashboard_url": url,
    }
    for name, template in rule.annotations.items():
        out[name] = render(template, context)
    return out
