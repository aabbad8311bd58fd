"""The alert-rule language (docs/alerts.md): a rule's `when:` selects transactions, queues or
dependencies (which of the three is decided by the conditions it uses), `for:` how long it must
hold, `group_by:` one alert per distinct combination of labels, templates the annotations.

`parse_rules` validates rules as written anywhere (the config's `alerts.rules`, a rules file, a pack,
the API) and names the source, the rule and the field of every problem.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from triage.durations import Duration
from triage.errors import ConfigError
from triage.settings import Model, Names, Settings, format_validation_error, one_or_many
from triage.vocabulary import CauseKind, Criticality, QueueStatus, State

_WHEN_BY_KIND = {
    "transactions": (
        "workflow state criticality facility cause_kind cause_component step min_age overdue min_value "
        "value_at_risk_over count_over period_close_within at_risk"
    ).split(),
    "queues": ["queue_status", "queue", "min_backlog"],
    "dependencies": ["error_rate_over", "service", "min_calls", "window"],
}
GROUP_LABELS = {
    "transactions": ["workflow", "key", "state", "facility", "criticality", "cause_kind", "cause_component", "step"],
    "queues": ["queue", "system", "queue_status"],
    "dependencies": ["service"],
}
DEFAULT_GROUP_BY = {
    "transactions": ["workflow", "facility", "cause_kind", "cause_component"],
    "queues": ["queue"],
    "dependencies": ["service"],
}
_COMMON_FIELDS = "rule severity count value value_at_risk workflow cause_kind cause_component dashboard_url since age"
TEMPLATE_FIELDS = {
    "transactions": _COMMON_FIELDS.split()
    + "key keys state facility facility_name criticality cause_detail top_cause step".split()
    + ["period_close", "period_close_in"],
    "queues": _COMMON_FIELDS.split() + "queue queue_status system backlog consumers oldest_age detail".split(),
    "dependencies": _COMMON_FIELDS.split() + "service error_rate errors calls detail".split(),
}
_KIND_WORD = {"transactions": "transaction", "queues": "queue", "dependencies": "dependency"}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_AMOUNT = re.compile(r"^\$?\s*(\d+(?:\.\d+)?)\s*([kKmMbB]?)$")


def parse_amount(value: Any) -> float:
    """Money as written in a rule: 500000, '500k', '$1.2M', '250,000'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _AMOUNT.match(str(value).replace(",", "").strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"invalid amount {value!r}: write e.g. 500000, '500k' or '$1.2M'")
    return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[match.group(2).lower()]


def parse_ratio(value: Any) -> float:
    """A share as 0.2 or '20%'."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise ValueError(f"invalid ratio {value!r}: write a share between 0 and 1 (0.2) or a percentage ('20%')")


Amount = Annotated[float, BeforeValidator(parse_amount)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]


class AlertWhen(Model):
    """What an alert rule watches; docs/alerts.md describes every condition."""

    workflow: Names | None = None
    state: Annotated[list[State], BeforeValidator(one_or_many)] | None = None
    criticality: Annotated[list[Criticality], BeforeValidator(one_or_many)] | None = None
    facility: Names | None = None
    cause_kind: Annotated[list[CauseKind], BeforeValidator(one_or_many)] | None = None
    cause_component: Names | None = None
    step: Names | None = None
    min_age: Duration | None = None
    overdue: Duration | None = None
    min_value: Amount | None = None
    value_at_risk_over: Amount | None = None
    count_over: int | None = Field(default=None, ge=0)
    period_close_within: Duration | None = None
    # Likely to miss its SLA by its breach forecast (true), or not (false); docs/correlation.md.
    at_risk: bool | None = None
    queue_status: Annotated[list[QueueStatus], BeforeValidator(one_or_many)] | None = None
    queue: Names | None = None
    min_backlog: int | None = Field(default=None, ge=0)
    error_rate_over: Ratio | None = None
    service: Names | None = None
    min_calls: int | None = Field(default=None, ge=1)
    window: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_conditions(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("`when` is a mapping of conditions, e.g. {state: [blocked], criticality: [critical]}")
        known = [c for names in _WHEN_BY_KIND.values() for c in names]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown condition {key!r}{hint}; conditions are: {', '.join(known)}")
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> AlertWhen:
        used = {k: [c for c in names if getattr(self, c) is not None] for k, names in _WHEN_BY_KIND.items()}
        kinds = [k for k, conditions in used.items() if conditions]
        if len(kinds) > 1:
            parts = " with ".join(f"{_KIND_WORD[k]} conditions ({', '.join(used[k])})" for k in kinds)
            raise ValueError(f"`when` mixes {parts}; write one rule per kind of signal")
        if kinds == ["dependencies"] and self.error_rate_over is None:
            raise ValueError("dependency conditions need error_rate_over, e.g. {error_rate_over: 0.2, service: [x]}")
        return self

    @property
    def kind(self) -> str:
        """transactions, queues or dependencies: what the rule selects."""
        if any(getattr(self, c) is not None for c in _WHEN_BY_KIND["queues"]):
            return "queues"
        return "dependencies" if self.error_rate_over is not None else "transactions"

    def pinned(self) -> dict[str, str]:
        """Labels that every match carries because the rule allows exactly one value for them."""
        names = ("workflow", "state", "criticality", "facility", "cause_kind", "cause_component", "queue", "service")
        return {n: v[0] for n in names if isinstance(v := getattr(self, n), list) and len(v) == 1}


def template_fields(template: str) -> list[str]:
    """The {placeholders} of an annotation template; ValueError names what is malformed."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc}; write {{{{ and }}}} for literal braces") from exc
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no format spec or conversion; values come formatted")
        fields.append(name)
    return fields


class AlertRule(Model):
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)
    when: AlertWhen
    for_: Duration = Field(default=0.0, alias="for")
    group_by: list[str] | None = None
    severity: str = Field(default="warning", pattern=r"^[a-z][a-z0-9_-]*$")
    summary: str | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.when.kind

    @property
    def grouping(self) -> list[str]:
        """The labels one alert per distinct combination of is raised for."""
        return list(DEFAULT_GROUP_BY[self.kind] if self.group_by is None else self.group_by)

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        allowed, word = GROUP_LABELS[self.kind], _KIND_WORD[self.kind]
        wrong = [g for g in self.group_by or [] if g not in allowed]
        if wrong:
            raise ValueError(f"group_by {wrong} is not available to {word} rules; use some of {allowed}")
        for label in self.labels:
            if not _LABEL_NAME.match(label) or label == "alertname":
                raise ValueError(f"label {label!r} must match [a-zA-Z_][a-zA-Z0-9_]* and not be alertname")
        templates = {"summary": self.summary, "description": self.description, **self.annotations}
        for where, template in templates.items():
            if template is None:
                continue
            try:
                unknown = [f for f in template_fields(template) if f not in TEMPLATE_FIELDS[self.kind]]
            except ValueError as exc:
                raise ValueError(f"{where} template: {exc}") from exc
            if unknown:
                raise ValueError(
                    f"{where} uses {', '.join('{' + f + '}' for f in unknown)}, which {word} rules do not "
                    f"have; available: {', '.join(TEMPLATE_FIELDS[self.kind])}"
                )
        return self


def parse_rules(items: Sequence[Any], source: str, where: tuple[str, ...] = ("rules",)) -> list[AlertRule]:
    """Rules as written; ConfigError names the source, the rule (index and name) and the field.

    `where` is where the list sits in `source`: ("alerts", "rules") in the configuration file.
    """
    rules = [_validated(item, source, (*where, i)) for i, item in enumerate(items)]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"invalid configuration in {source}:\n  - {'.'.join(where)}: each alert rule name must be unique; "
            f"repeated: {', '.join(dupes)}"
        )
    return rules


def _validated(item: Any, source: str, where: tuple[str | int, ...]) -> AlertRule:
    try:
        return AlertRule.model_validate(item)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, item, prefix=where)) from exc


def configured_inline(settings: Settings) -> list[AlertRule]:
    """The rules written in the configuration itself (`alerts.rules`)."""
    return parse_rules(settings.alerts.rules, settings.source, ("alerts", "rules"))
