"""The configuration's schema: one pydantic model per section, `Settings` at the top.

The alert-rule language is the alerts part's (alerts/language.py): here `alerts.rules` are kept as
written and validated by that part where the assembly loads the configuration.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from triage.durations import Duration
from triage.settings.types import Model, Regex, Shard, ShardSpec, SqlRegex, check_regex
from triage.vocabulary import CRITICALITIES, ROLES, Criticality, Role


def default_store() -> str:
    """Embedded store under ./data unless TRIAGE_DATA_DIR says otherwise."""
    return f"chdb://{Path(os.environ.get('TRIAGE_DATA_DIR', 'data')).resolve()}"


class Facility(Model):
    id: str
    name: str
    criticality: Criticality = Criticality.NORMAL


class StepMatch(Model):
    span_name: str | None = None
    service: str | None = None
    kind: Literal["internal", "server", "client", "producer", "consumer"] | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    log_pattern: SqlRegex | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> StepMatch:
        if not (self.span_name or self.service or self.kind or self.attributes or self.log_pattern):
            raise ValueError("match needs at least one of span_name, service, kind, attributes, log_pattern")
        return self


class Sla(Model):
    normal: Duration | None = None
    high: Duration | None = None
    critical: Duration | None = None

    def for_criticality(self, criticality: str) -> float | None:
        """The SLA for a tier, falling back to the next less critical tier that has one."""
        order = [str(c) for c in CRITICALITIES]
        for tier in order[order.index(criticality) :]:
            value = getattr(self, tier)
            if value is not None:
                return float(value)
        return None


class When(Model):
    """When a conditional step applies: every condition given must hold for the transaction."""

    min_value: float | None = None  # the transaction's value (its `value` attribute) at or above this
    attributes: dict[str, str] = Field(default_factory=dict)  # held by any event of the transaction

    @model_validator(mode="after")
    def _not_empty(self) -> When:
        if self.min_value is None and not self.attributes:
            raise ValueError("when needs min_value, attributes or both, e.g. {min_value: 250000}")
        return self

    def holds(self, value: float, attributes: Mapping[str, Collection[str]]) -> bool:
        """Whether a transaction of `value` whose events hold `attributes` (name → values seen) meets it."""
        if self.min_value is not None and value < self.min_value:
            return False
        return all(want in attributes.get(name, ()) for name, want in self.attributes.items())


class Step(Model):
    name: str
    match: StepMatch
    human: bool = False
    optional: bool = False
    when: When | None = None
    sla: Sla | None = None
    failure: StepMatch | None = None

    def applies(self, value: float, attributes: Mapping[str, Collection[str]]) -> bool:
        """Whether the step exists for a transaction (a conditional step only when its `when` holds)."""
        return self.when is None or self.when.holds(value, attributes)


class OneOf(Model):
    """An exclusive gateway: the transaction takes exactly one of the branches, any of which satisfies
    the flow. A branch is one step or a list of steps in order."""

    branches: list[list[Step]] = Field(alias="one_of", min_length=2)

    @field_validator("branches", mode="before")
    @classmethod
    def _branch_lists(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [b if isinstance(b, list) else [b] for b in value]
        return value

    @field_validator("branches")
    @classmethod
    def _no_empty_branch(cls, branches: list[list[Step]]) -> list[list[Step]]:
        if any(not b for b in branches):
            raise ValueError("every branch of one_of needs at least one step")
        return branches


def _flow_item(value: Any) -> str:
    if isinstance(value, dict):
        return "one_of" if "one_of" in value else "step"
    return "one_of" if isinstance(value, OneOf) else "step"


FlowItem = Annotated[
    Annotated[Step, Tag("step")] | Annotated[OneOf, Tag("one_of")],
    Discriminator(_flow_item),
]
FLOW_TAGS = ("step", "one_of")  # how pydantic names the union's members in an error's location


_BLANK = " \t\n\r\f\v"  # what a key is trimmed of, in Python and in SQL alike


class KeyFormat(Model):
    """How a workflow's keys are written in canonical form, so that every system's spelling is one key."""

    strip_prefixes: list[str] = Field(default_factory=list)  # the first that starts the key is removed
    strip_leading_zeros: bool = False
    pad_to: int | None = Field(default=None, ge=1, le=64)  # left-pad with zeros to this many characters
    case: Literal["keep", "upper", "lower"] = "keep"
    # One attribute value may list many keys (a batch): split on this; "" keeps every value whole.
    split: SqlRegex = r"[,;\s]+"

    def canonical(self, key: str) -> str:
        """`key` in canonical form (the same as correlator.rules.normalized_keys_expr computes in SQL)."""
        k = key.strip(_BLANK)
        if self.case == "upper":
            k = k.upper()
        elif self.case == "lower":
            k = k.lower()
        for prefix in self.strip_prefixes:
            p = prefix.upper() if self.case == "upper" else prefix.lower() if self.case == "lower" else prefix
            if p and k.startswith(p):
                k = k[len(p) :].strip(_BLANK)
                break
        if self.strip_leading_zeros and len(k) > 1:
            k = k.lstrip("0") or "0"
        if self.pad_to is not None and k and len(k) < self.pad_to:
            k = k.rjust(self.pad_to, "0")
        return k

    def split_keys(self, value: str) -> list[str]:
        """Every key one attribute value names, canonical, in order, each once."""
        if value.startswith("["):
            try:
                listed = json.loads(value)
            except ValueError:
                listed = None
            if isinstance(listed, list):
                parts = [v if isinstance(v, str) else json.dumps(v) for v in listed]
                return _unique(self.canonical(p) for p in parts)
        parts = re.split(self.split, value) if self.split else [value]
        return _unique(self.canonical(p) for p in parts)


def _unique(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(k for k in keys if k))


class Workflow(Model):
    name: str
    keys: list[str]
    key_patterns: list[SqlRegex] = Field(default_factory=list)
    key_format: KeyFormat = Field(default_factory=KeyFormat)
    facility: str | None = None
    value: str | None = None
    flow: list[FlowItem] = Field(alias="steps")
    terminal: list[str] = Field(default_factory=list)
    _steps: list[Step] = PrivateAttr(default_factory=list)
    _successors: dict[str, list[Step]] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_has_no_nul(cls, name: str) -> str:
        # the report's snapshot (migration 0020) finds a transaction by Workflow NUL Key
        if "\0" in name:
            raise ValueError(f"workflow name {name!r} holds a NUL character: remove it")
        return name

    @field_validator("key_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if re.compile(pattern).groups > 1:
                raise ValueError(f"key pattern {pattern!r} must have at most one capture group (the key)")
        return patterns

    @property
    def steps(self) -> list[Step]:
        """Every step, alternatives included, in the order written."""
        return self._steps

    def step(self, name: str) -> Step | None:
        return next((s for s in self._steps if s.name == name), None)

    def successors(self, current: str) -> list[Step]:
        """The steps that may directly follow `current` ("" before the first): one, or one per branch."""
        return self._successors.get(current, [])

    def frontier(self, current: str, applies: Callable[[Step], bool] = lambda s: True) -> list[Step]:
        """The required steps the transaction may reach next from `current`: past optional steps and past
        conditional steps that do not apply (`applies` says which do), one per branch of a gateway."""
        found: list[Step] = []
        seen: set[str] = set()
        todo = list(self.successors(current))
        while todo:
            step = todo.pop(0)
            if step.name in seen:
                continue
            seen.add(step.name)
            if step.optional or not applies(step):
                todo.extend(self.successors(step.name))
            else:
                found.append(step)
        return found

    def next_steps(self, current: str) -> list[Step]:
        """The steps that may come after `current`: the frontier and the optional steps on the way to it."""
        out: list[Step] = []
        todo = list(self.successors(current))
        while todo:
            step = todo.pop(0)
            if step in out:
                continue
            out.append(step)
            if step.optional or step.when is not None:
                todo.extend(self.successors(step.name))
        return out

    @model_validator(mode="after")
    def _steps_consistent(self) -> Workflow:
        if not self.keys and not self.key_patterns:
            raise ValueError("a workflow needs keys (attribute names) or key_patterns")
        if not self.flow:
            raise ValueError("a workflow needs at least one step")
        self._build()
        names = [s.name for s in self._steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique, got {names}")
        for terminal in self.terminal:
            if terminal not in names:
                raise ValueError(f"terminal step {terminal!r} is not one of the steps {names}")
        return self

    def _build(self) -> None:
        """The flat step list and the successor graph of the flow as written."""
        steps: list[Step] = []
        successors: dict[str, list[Step]] = {}
        tails = [""]

        def chain(after: list[str], step: Step) -> list[str]:
            steps.append(step)
            for tail in after:
                successors.setdefault(tail, []).append(step)
            return [step.name]

        for item in self.flow:
            if isinstance(item, Step):
                tails = chain(tails, item)
                continue
            ends: list[str] = []
            for branch in item.branches:
                inner = tails
                for step in branch:
                    inner = chain(inner, step)
                ends.extend(inner)
            tails = ends
        self._steps, self._successors = steps, successors


class Queue(Model):
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


class LogSource(Model):
    """Raw log lines from one integration engine: posted to /api/v1/logs/raw or tailed from `path`."""

    name: str
    format: Literal["json", "syslog", "mirth", "mule", "log4j", "regex"]
    pattern: Regex | None = None
    path: str | None = None
    service: str | None = None
    multiline: bool | None = None
    timezone: str = "UTC"
    timestamp_format: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    start_at: Literal["beginning", "end"] = "beginning"
    poll_interval: Duration = Field(default=1.0, gt=0)
    flush_after: Duration = 1.0

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


class Redaction(Model):
    enabled: bool = True
    key_env: str = "TRIAGE_REDACTION_KEY"
    key_file: str | None = None
    allow_keys: list[str] = Field(default_factory=list)
    patterns: dict[str, str] = Field(default_factory=dict)  # an empty pattern switches a built-in one off
    hl7: bool = True

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, str]) -> dict[str, str]:
        for kind, pattern in patterns.items():
            if not re.fullmatch(r"[a-z0-9_]+", kind):
                raise ValueError(f"pattern name {kind!r} must be lower-case letters, digits and underscores")
            if pattern:
                try:
                    check_regex(pattern)
                except ValueError as exc:
                    raise ValueError(f"redaction pattern {kind!r}: {exc}") from exc
        return patterns


class Webhook(Model):
    url: str
    secret_env: str | None = None
    send_resolved: bool = True

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"webhook url {value!r} must be an http:// or https:// URL")
        return value


class Alerts(Model):
    enabled: bool = True
    alertmanager_url: str | None = None
    webhooks: list[Webhook] = Field(default_factory=list)
    rules_file: str | None = None
    packs: list[str] = Field(default_factory=list)
    # As written; the alerts part validates them (alerts.language.parse_rules) when the config is loaded.
    rules: list[dict[str, Any]] = Field(default_factory=list)
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
        return self


class Forecast(Model):
    """Breach forecasts (docs/correlation.md, "Breach forecasts"): from how long each step's wait took in
    the store's recent history, when an in-flight transaction should move on and when it is at risk."""

    enabled: bool = True
    history: Duration = Field(default=86400.0 * 7, gt=0)  # how far back waits are learnt from
    # Waits a basis needs: per facility when it has this many, else per criticality, else per workflow step.
    min_samples: int = Field(default=20, ge=1)
    # At risk once history gives a transaction still waiting at most a 1 - risk_share chance to make the SLA.
    risk_share: float = Field(default=0.95, gt=0, le=1)
    # ...on evidence: at least this many past waits (or earlier stoppages) lasted as long as a flag is raised
    # at. Past the longest of them history says nothing of making the SLA, and most such flags made it.
    min_evidence: int = Field(default=3, ge=1)
    refresh: Duration = Field(default=60.0, ge=0)  # how often the history is read again
    # A step is stopped when nobody has left it, while transactions wait there, for longer than its past gaps'
    # far-out fence (third quartile + stoppage_fence × interquartile range) and at least `stoppage_after`;
    # waiting behind it is forecast from how long its earlier stoppages lasted, once it has had `min_stoppages`.
    stoppage_fence: float = Field(default=3.0, gt=0)
    stoppage_after: Duration = Field(default=60.0, ge=0)
    min_stoppages: int = Field(default=3, ge=1)


class Correlation(Model):
    interval: Duration = 5.0
    settle: Duration = 1.0
    overlap: Duration = 5.0
    reevaluate: Duration = 30.0
    lookback: Duration = 86400.0 * 7
    hop_rounds: int = Field(default=3, ge=1, le=10)
    # The business gauges on /metrics are recomputed after a cycle at most this often (0: after every cycle):
    # three FINAL reads of business_transactions (tens of milliseconds under load) that need not delay the
    # next cycle four times a second for a scrape that comes every 15 s.
    gauges_every: Duration = Field(default=2.0, ge=0)
    transformation_patterns: list[SqlRegex] = Field(
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
    # A shard's worker renews its lease once half of it is left (checked every cycle); one that stops is
    # replaced this long after (default: 30 s, or three intervals when that is longer).
    lease: Duration | None = Field(default=None, ge=1)
    forecast: Forecast = Field(default_factory=Forecast)

    @property
    def lease_ttl(self) -> float:
        return self.lease if self.lease is not None else max(30.0, 3 * self.interval)

    @model_validator(mode="after")
    def _lease_outlives_cycle(self) -> Correlation:
        if self.lease is not None and self.lease < 2 * self.interval:
            raise ValueError(
                f"lease_ttl ({self.lease_ttl:g}s) must be at least twice the interval ({self.interval:g}s): "
                "a worker checks its shard's lease once a cycle"
            )
        return self


class Retention(Model):
    # At most ~68 years: the TTL (the row's DateTime plus raw_days) must stay below DateTime's 2106 limit.
    raw_days: int = Field(default=7, ge=1, le=25000)
    business_days: int = Field(default=400, ge=1, le=3650)


class Wal(Model):
    """The write-ahead log: every accepted request is on disk before it is acknowledged (docs/operations.md)."""

    enabled: bool = True
    dir: str | None = None  # default: wal/ in the embedded store's directory, else ./data/wal
    segment_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    sync: bool = True  # fsync before acknowledging; false trusts the OS page cache (survives kill -9, not power loss)
    sync_timeout: Duration = Field(default=30.0, gt=0)


class Ingest(Model):
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    batch_max_rows: int = Field(default=50_000, ge=1)
    batch_max_delay: Duration = 0.2
    buffer_max_rows: int = Field(default=1_000_000, ge=1)
    # Memory stays bounded while the store is down: the buffer refuses past this many bytes too.
    buffer_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    spool_dir: str | None = None
    wal: Wal = Field(default_factory=Wal)


ScopeName = Literal["ingest", "read", "admin"]
ALL_SCOPES: tuple[ScopeName, ...] = ("ingest", "read", "admin")
READ_ONLY: tuple[ScopeName, ...] = ("read",)


class ApiKey(Model):
    """A key with the scopes it grants (a key written as a plain string grants all three)."""

    key: str = Field(min_length=16, description="a long random secret")
    scopes: list[ScopeName] = Field(default_factory=lambda: list(ALL_SCOPES))
    name: str = Field(default="", max_length=100, description="who holds it, for the audit log")


class Auth(Model):
    """Single sign-on through an authenticating proxy, and the dashboards' sessions (docs/operations.md)."""

    trusted_proxies: list[str] = Field(default_factory=list)  # addresses/CIDRs whose user header is believed
    user_header: str = "X-Forwarded-User"
    proxy_scopes: list[ScopeName] = Field(default_factory=lambda: list(READ_ONLY))
    session: Duration = Field(default=12 * 3600.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"trusted proxy {value!r} is not an address or CIDR, e.g. 10.0.0.5 or 10.0.0.0/24"
                ) from exc
        return values


class Listen(Model):
    """Limits of every HTTP listener (API, OTLP/HTTP): connections that hold a slot for nothing are closed."""

    header_timeout: Duration = Field(default=10.0, gt=0)  # to send a request's line and headers
    idle_timeout: Duration = Field(default=5.0, ge=1)  # a keep-alive connection with no new request


class Settings(Model):
    store: str = Field(default_factory=default_store)
    cluster: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    otlp_http_port: int = Field(default=4318, ge=0, le=65535)
    otlp_grpc_port: int = Field(default=4317, ge=0, le=65535)
    api_keys: list[str | ApiKey] = Field(default_factory=list)
    auth: Auth = Field(default_factory=Auth)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    retention: Retention = Field(default_factory=Retention)
    ingest: Ingest = Field(default_factory=Ingest)
    listen: Listen = Field(default_factory=Listen)
    facilities: list[Facility] = Field(default_factory=list)
    workflows: list[Workflow] = Field(default_factory=list)
    queues: list[Queue] = Field(default_factory=list)
    log_sources: list[LogSource] = Field(default_factory=list)
    redaction: Redaction = Field(default_factory=Redaction)
    alerts: Alerts = Field(default_factory=Alerts)
    correlation: Correlation = Field(default_factory=Correlation)
    # Which parts this process runs (docs/operations.md, "Scaling out"); all of them by default.
    roles: list[Role] = Field(default_factory=lambda: [str(r) for r in ROLES])  # type: ignore[arg-type]
    # The correlator shard this process owns (it takes over others' whose lease lapsed).
    shard: ShardSpec = Field(default_factory=Shard)
    _source: str = PrivateAttr(default="settings")

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [r.strip() for r in value.split(",") if r.strip()]
        return value

    @field_validator("roles")
    @classmethod
    def _some_role(cls, roles: list[Role]) -> list[Role]:
        if not roles:
            raise ValueError(f"give at least one role of {', '.join(ROLES)}")
        return list(dict.fromkeys(roles))

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _no_empty_key(cls, keys: list[str | ApiKey]) -> list[str | ApiKey]:
        # An empty key would match a request that sends none: authentication silently off.
        for i, key in enumerate(k if isinstance(k, str) else k.key for k in keys):
            if not key.strip():
                raise ValueError(f"api_keys[{i}] is empty; give a long random key, or no api_keys to run without keys")
            if key != key.strip():
                raise ValueError(f"api_keys[{i}] has spaces around it; write the key alone")
        return keys

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

    @property
    def source(self) -> str:
        """Where these settings were read from (the file, or flags and environment), for error messages."""
        return self._source

    @source.setter
    def source(self, value: str) -> None:
        self._source = value

    def key_with(self, scope: str) -> str | None:
        """A configured API key that grants `scope` (the first), for Triage's own clients (CLI, demo)."""
        for key in self.api_keys:
            if isinstance(key, str) or scope in key.scopes:
                return key if isinstance(key, str) else key.key
        return None

    def business_attribute_keys(self) -> set[str]:
        """Attributes that carry business keys, facility ids and values: never redacted."""
        keys = set(self.redaction.allow_keys)
        for workflow in self.workflows:
            keys.update(workflow.keys)
            keys.update(k for k in (workflow.facility, workflow.value) if k)
        return keys

    def facility(self, facility_id: str) -> Facility | None:
        return next((f for f in self.facilities if f.id == facility_id), None)
