"""Settings: one YAML file, then `TRIAGE_*` environment variables, then CLI flags, validated by pydantic."""

from __future__ import annotations

import difflib
import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from triage.durations import Duration
from triage.errors import ConfigError

ENV_PREFIX = "TRIAGE_"
Criticality = Literal["critical", "high", "normal"]


def default_store() -> str:
    """Embedded store under ./data unless TRIAGE_DATA_DIR says otherwise."""
    return f"chdb://{Path(os.environ.get('TRIAGE_DATA_DIR', 'data')).resolve()}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Facility(_Model):
    id: str
    name: str
    criticality: Criticality = "normal"


class StepMatch(_Model):
    span_name: str | None = None
    service: str | None = None
    kind: Literal["internal", "server", "client", "producer", "consumer"] | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    log_pattern: str | None = None

    @field_validator("log_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"log_pattern is not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> StepMatch:
        if not (self.span_name or self.service or self.kind or self.attributes or self.log_pattern):
            raise ValueError("match needs at least one of span_name, service, kind, attributes, log_pattern")
        return self


class Sla(_Model):
    normal: Duration | None = None
    high: Duration | None = None
    critical: Duration | None = None

    def for_criticality(self, criticality: str) -> float | None:
        """The SLA for a tier, falling back to the next less critical tier that has one."""
        order = ["critical", "high", "normal"]
        for tier in order[order.index(criticality) :]:
            value = getattr(self, tier)
            if value is not None:
                return float(value)
        return None


class Step(_Model):
    name: str
    match: StepMatch
    human: bool = False
    optional: bool = False
    sla: Sla | None = None
    failure: StepMatch | None = None


class Workflow(_Model):
    name: str
    keys: list[str]
    key_patterns: list[str] = Field(default_factory=list)
    facility: str | None = None
    value: str | None = None
    steps: list[Step]
    terminal: list[str] = Field(default_factory=list)

    @field_validator("key_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"key pattern {pattern!r} is not a valid regular expression: {exc}") from exc
            if compiled.groups > 1:
                raise ValueError(f"key pattern {pattern!r} must have at most one capture group (the key)")
        return patterns

    @model_validator(mode="after")
    def _steps_consistent(self) -> Workflow:
        if not self.keys and not self.key_patterns:
            raise ValueError("a workflow needs keys (attribute names) or key_patterns")
        if not self.steps:
            raise ValueError("a workflow needs at least one step")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique, got {names}")
        for terminal in self.terminal:
            if terminal not in names:
                raise ValueError(f"terminal step {terminal!r} is not one of the steps {names}")
        return self


class Queue(_Model):
    name: str
    kind: Literal["rabbitmq", "nats", "redis", "prometheus", "push"]
    url: str | None = None
    queue: str | None = None
    stream: str | None = None
    group: str | None = None
    consumer: str | None = None
    management_url: str | None = None
    interval: Duration = 15.0
    # How a queue's status is judged; docs/queues.md explains each.
    window: Duration = 300.0
    lag_threshold: Duration = 300.0
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _needs(self) -> Queue:
        needs = {
            "rabbitmq": ("url", "queue"),
            "nats": ("url", "stream"),
            "redis": ("url", "stream"),
            "prometheus": ("url",),
            "push": (),
        }[self.kind]
        missing = [f for f in needs if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.kind} queue needs {', '.join(missing)}")
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1s (given {self.interval}s); 15s suits most brokers")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive, e.g. '10s'")
        return self

    @property
    def effective_window(self) -> float:
        """The status window, never shorter than three polls so that a trend has points."""
        return max(self.window, 3 * self.interval)


class LogSource(_Model):
    """Raw log lines from one integration engine: posted to /api/v1/logs/raw or tailed from `path`."""

    name: str
    format: Literal["json", "syslog", "mirth", "mule", "log4j", "regex"]
    pattern: str | None = None
    path: str | None = None
    service: str | None = None
    multiline: bool | None = None
    timezone: str = "UTC"
    timestamp_format: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    start_at: Literal["beginning", "end"] = "beginning"
    poll_interval: Duration = Field(default=1.0, gt=0)
    flush_after: Duration = 1.0

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as UTC or Europe/Berlin") from exc
        return value

    @model_validator(mode="after")
    def _regex_has_pattern(self) -> LogSource:
        if self.format == "regex" and not self.pattern:
            raise ValueError("a regex log source needs `pattern` with named groups, e.g. (?P<message>.*)")
        return self


class Redaction(_Model):
    enabled: bool = True
    key_env: str = "TRIAGE_REDACTION_KEY"
    key_file: str | None = None
    allow_keys: list[str] = Field(default_factory=list)
    patterns: dict[str, str] = Field(default_factory=dict)
    hl7: bool = True

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, str]) -> dict[str, str]:
        for kind, pattern in patterns.items():
            if not re.fullmatch(r"[a-z0-9_]+", kind):
                raise ValueError(f"pattern name {kind!r} must be lower-case letters, digits and underscores")
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"redaction pattern {kind!r} is not a valid regex: {exc}") from exc
        return patterns


class Webhook(_Model):
    url: str
    secret_env: str | None = None
    send_resolved: bool = True

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"webhook url {value!r} must be an http:// or https:// URL")
        return value


# The alert rule language (docs/alerts.md). A rule's `when:` selects transactions, queues or
# dependencies; which of the three is decided by the conditions it uses.
TransactionState = Literal["in_progress", "completed", "stalled", "blocked", "failed"]
CauseKind = Literal["queue_backlog", "dependency_error", "transformation_failed", "awaiting_approval", "unknown"]
QueueStatus = Literal["ok", "lagging", "stalled", "stopped", "unknown"]
_WHEN_BY_KIND = {
    "transactions": (
        "workflow state criticality facility cause_kind cause_component step min_age overdue min_value "
        "value_at_risk_over count_over period_close_within"
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


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


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


Names = Annotated[list[str], BeforeValidator(_one_or_many)]
Amount = Annotated[float, BeforeValidator(parse_amount)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]


class AlertWhen(_Model):
    """What an alert rule watches; docs/alerts.md describes every condition."""

    workflow: Names | None = None
    state: Annotated[list[TransactionState], BeforeValidator(_one_or_many)] | None = None
    criticality: Annotated[list[Criticality], BeforeValidator(_one_or_many)] | None = None
    facility: Names | None = None
    cause_kind: Annotated[list[CauseKind], BeforeValidator(_one_or_many)] | None = None
    cause_component: Names | None = None
    step: Names | None = None
    min_age: Duration | None = None
    overdue: Duration | None = None
    min_value: Amount | None = None
    value_at_risk_over: Amount | None = None
    count_over: int | None = Field(default=None, ge=0)
    period_close_within: Duration | None = None
    queue_status: Annotated[list[QueueStatus], BeforeValidator(_one_or_many)] | None = None
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


class AlertRule(_Model):
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


class Alerts(_Model):
    enabled: bool = True
    alertmanager_url: str | None = None
    webhooks: list[Webhook] = Field(default_factory=list)
    rules_file: str | None = None
    packs: list[str] = Field(default_factory=list)
    rules: list[AlertRule] = Field(default_factory=list)
    interval: Duration = 30.0
    resend_interval: Duration = 60.0
    external_url: str | None = None
    timeout: Duration = 10.0
    webhook_max_attempts: int = Field(default=6, ge=1, le=50)
    webhook_backoff: Duration = 1.0
    webhook_backoff_max: Duration = 60.0
    signal_window: Duration = 300.0

    @model_validator(mode="after")
    def _sane(self) -> Alerts:
        for label, url in (("alertmanager_url", self.alertmanager_url), ("external_url", self.external_url)):
            if url is not None and not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"{label} {url!r} must be an http:// or https:// URL, e.g. http://127.0.0.1:9093")
        if self.interval < 0.1:
            raise ValueError(f"interval must be at least 0.1s (given {self.interval}s); 30s suits most estates")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"each alert rule name must be unique; repeated: {', '.join(dupes)}")
        return self


class Correlation(_Model):
    interval: Duration = 5.0
    settle: Duration = 1.0
    overlap: Duration = 5.0
    reevaluate: Duration = 30.0
    lookback: Duration = 86400.0 * 7
    hop_rounds: int = Field(default=3, ge=1, le=10)
    transformation_patterns: list[str] = Field(
        default_factory=lambda: [
            r"(?i)\b(mapping|transform(ation)?|validation|schema|parse|translat(e|ion))\b"
            r".{0,40}\b(error|fail(ed|ure)?|invalid|reject(ed)?)\b"
        ]
    )
    dependency_error_rate: float = Field(default=0.2, ge=0, le=1)
    dependency_min_errors: int = Field(default=3, ge=1)
    health_window: Duration = 600.0
    period_close: list[str] = Field(default_factory=list)
    enabled: bool = True


class Retention(_Model):
    raw_days: int = Field(default=7, ge=1, le=3650)
    business_days: int = Field(default=400, ge=1, le=3650)


class Ingest(_Model):
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    batch_max_rows: int = Field(default=50_000, ge=1)
    batch_max_delay: Duration = 0.2
    buffer_max_rows: int = Field(default=1_000_000, ge=1)
    spool_dir: str | None = None


class Settings(_Model):
    store: str = Field(default_factory=default_store)
    cluster: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    otlp_http_port: int = Field(default=4318, ge=0, le=65535)
    otlp_grpc_port: int = Field(default=4317, ge=0, le=65535)
    api_keys: list[str] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    retention: Retention = Field(default_factory=Retention)
    ingest: Ingest = Field(default_factory=Ingest)
    facilities: list[Facility] = Field(default_factory=list)
    workflows: list[Workflow] = Field(default_factory=list)
    queues: list[Queue] = Field(default_factory=list)
    log_sources: list[LogSource] = Field(default_factory=list)
    redaction: Redaction = Field(default_factory=Redaction)
    alerts: Alerts = Field(default_factory=Alerts)
    correlation: Correlation = Field(default_factory=Correlation)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for label, items in (
            ("facility id", [f.id for f in self.facilities]),
            ("workflow name", [w.name for w in self.workflows]),
            ("queue name", [q.name for q in self.queues]),
            ("log source name", [s.name for s in self.log_sources]),
        ):
            dupes = sorted({x for x in items if items.count(x) > 1})
            if dupes:
                raise ValueError(f"each {label} must be unique; repeated: {', '.join(dupes)}")
        return self

    def business_attribute_keys(self) -> set[str]:
        """Attributes that carry business keys, facility ids and values: never redacted."""
        keys = set(self.redaction.allow_keys)
        for workflow in self.workflows:
            keys.update(workflow.keys)
            keys.update(k for k in (workflow.facility, workflow.value) if k)
        return keys

    def facility(self, facility_id: str) -> Facility | None:
        return next((f for f in self.facilities if f.id == facility_id), None)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """TRIAGE_PORT=9000 → {port: '9000'}; TRIAGE_INGEST__MAX_BODY_BYTES → {ingest: {max_body_bytes}}."""
    out: dict[str, Any] = {}
    known = set(Settings.model_fields)
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in known:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML file as a mapping, with errors that name the file and line."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}. Pass an existing file with --config.") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{p}:{line} is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping (store:, workflows:, ...), not {type(data).__name__}")
    return data


def _field_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """workflows[0].steps[1].sla, with the workflow/step name where there is one."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            name = ""
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                label = node[item].get("name") or node[item].get("id")
                name = f" ({label})" if label else ""
            parts[-1] = f"{parts[-1]}[{item}]{name}" if parts else f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def format_validation_error(exc: ValidationError, source: str, data: dict[str, Any]) -> str:
    """One line per problem: where (source, field path), what, and the value given."""
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        where = _field_path(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against docs/configuration.md"
        elif err["type"] == "missing":
            msg = "required field is missing"
        given = "" if err["type"] in ("missing",) else f" (given: {err.get('input')!r})"
        if err["type"] in ("extra_forbidden",) or isinstance(err.get("input"), dict | list):
            given = ""
        lines.append(f"  - {where}: {msg}{given}")
    return "\n".join(lines)


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Settings from the YAML file, then TRIAGE_* variables, then explicit overrides (CLI flags)."""
    environ = dict(os.environ if environ is None else environ)
    config_file = config_file or environ.get("TRIAGE_CONFIG")
    data: dict[str, Any] = read_yaml(config_file) if config_file else {}
    env = _env_overrides({k: v for k, v in environ.items() if k not in ("TRIAGE_CONFIG", "TRIAGE_DATA_DIR")})
    merged = _deep_merge(_deep_merge(data, env), {k: v for k, v in (overrides or {}).items() if v is not None})
    source = str(config_file) if config_file else "flags and TRIAGE_* environment"
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, merged)) from exc
