"""Where alert rules come from: the config (`alerts.rules`), `alerts.rules_file`, shipped packs
(`alerts.packs`) and the API (stored in `alert_rules`). Every error names the source, the rule and the field."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alerts import metrics
from alerts.language import AlertRule, configured_inline, parse_rules
from triage.errors import ConfigError
from triage.settings import Settings, read_yaml
from triage.store import Store

log = logging.getLogger("triage.alerts")
_API_RULES = "SELECT Name, Body FROM alert_rules FINAL WHERE Deleted = 0 ORDER BY Name"


@dataclass(frozen=True)
class LoadedRule:
    rule: AlertRule
    source: str  # config, file:<path>, pack:<name>, api


def pack_names() -> list[str]:
    """The rule packs shipped in alerts/packs/."""
    folder = resources.files("alerts").joinpath("packs")
    return sorted(e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))


def load_file(path: str | Path) -> list[AlertRule]:
    if not Path(path).is_file():
        raise ConfigError(f"alerts.rules_file {path}: no such file (relative paths start at the working directory)")
    return _list(read_yaml(path), str(path))


def load_pack(name: str) -> list[AlertRule]:
    if name not in pack_names():
        raise ConfigError(f"alerts.packs: unknown pack {name!r}; shipped packs: {', '.join(pack_names())}")
    path = resources.files("alerts").joinpath("packs", f"{name}.yaml")
    with resources.as_file(path) as file:
        return _list(read_yaml(file), f"pack {name} ({file})")


def _list(data: Any, source: str) -> list[AlertRule]:
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"{source}: expected `rules:` with a list of rules (name, when, for, severity, summary)")
    return parse_rules(items, source)


def rule_from_api(body: dict[str, Any]) -> AlertRule:
    """A rule posted to the API; ConfigError names the field."""
    return parse_rules([body], "request body")[0]


def configured(settings: Settings) -> list[LoadedRule]:
    """Config, rules file and packs, names unique across them (ConfigError otherwise)."""
    conf = settings.alerts
    rules = [LoadedRule(r, "config") for r in configured_inline(settings)]
    if conf.rules_file:
        rules += [LoadedRule(r, f"file:{conf.rules_file}") for r in load_file(conf.rules_file)]
    for pack in conf.packs:
        rules += [LoadedRule(r, f"pack:{pack}") for r in load_pack(pack)]
    _unique(rules)
    return rules


def _unique(rules: list[LoadedRule]) -> None:
    seen: dict[str, str] = {}
    for r in rules:
        if r.rule.name in seen:
            raise ConfigError(
                f"alert rule {r.rule.name!r} is defined twice ({seen[r.rule.name]} and {r.source}); rename one"
            )
        seen[r.rule.name] = r.source


def api_rules(store: Store) -> list[AlertRule]:
    out = []
    for name, body in store.query(_API_RULES).result_rows:
        try:
            out.append(AlertRule.model_validate(json.loads(body)))
        except (ValueError, ValidationError) as exc:
            metrics.RULE_LOAD_FAILURES.labels("api").inc()
            log.error("event=stored_rule_invalid rule=%s error=%r", name, exc)
    return out


def save_api_rule(store: Store, rule: AlertRule) -> None:
    body = json.dumps(rule.model_dump(by_alias=True, exclude_none=True))
    store.insert(
        "alert_rules",
        [[rule.name, body, 0, datetime.now(UTC), time.time_ns()]],
        ["Name", "Body", "Deleted", "UpdatedAt", "Version"],
    )


def delete_api_rule(store: Store, name: str) -> bool:
    if name not in {r.name for r in api_rules(store)}:
        return False
    store.insert(
        "alert_rules",
        [[name, "{}", 1, datetime.now(UTC), time.time_ns()]],
        ["Name", "Body", "Deleted", "UpdatedAt", "Version"],
    )
    return True


class RuleBook:
    """The rules in force, re-read each cycle: the rules file when it changes, API rules from the store.

    A source that fails to load keeps its last good rules (and `degraded` is set) so that a typo in
    the rules file neither stops alerting nor resolves the alerts of the rules it holds."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.degraded = False
        self._file_mtime: float | None = None
        self._static: list[LoadedRule] = []
        self._static_error: str | None = None
        self._loaded = False

    def current(self) -> list[LoadedRule]:
        self._reload_static()
        self.degraded = self._static_error is not None
        names = {r.rule.name for r in self._static}
        rules = list(self._static)
        try:
            for rule in api_rules(self.store):
                if rule.name in names:
                    log.warning("event=api_rule_shadowed rule=%s hint='a config rule has this name'", rule.name)
                    continue
                rules.append(LoadedRule(rule, "api"))
        except Exception as exc:
            self.degraded = True
            metrics.RULE_LOAD_FAILURES.labels("api").inc()
            log.error("event=api_rules_unavailable error=%r", exc)
        for source in ("config", "file", "pack", "api"):
            metrics.RULES.labels(source).set(sum(1 for r in rules if r.source.split(":")[0] == source))
        return rules

    def _reload_static(self) -> None:
        path = self.settings.alerts.rules_file
        mtime = _mtime(path) if path else None
        if self._loaded and mtime == self._file_mtime:
            return
        self._loaded, self._file_mtime = True, mtime
        try:
            self._static = configured(self.settings)
            self._static_error = None
            log.info("event=alert_rules_loaded rules=%d", len(self._static))
            _warn_unknown_workflows(self._static, self.settings)
        except ConfigError as exc:
            metrics.RULE_LOAD_FAILURES.labels("file").inc()
            self._static_error = str(exc)
            log.error("event=alert_rules_invalid keeping=last_good error=%s", str(exc).replace("\n", " | "))
            if not self._static:
                with contextlib.suppress(ConfigError):  # the config's own rules, when only the file is bad
                    self._static = [LoadedRule(r, "config") for r in configured_inline(self.settings)]


def _warn_unknown_workflows(rules: list[LoadedRule], settings: Settings) -> None:
    """A rule naming a workflow the config does not define never matches: say so once, at load."""
    known = {w.name for w in settings.workflows}
    for item in rules:
        unknown = sorted(set(item.rule.when.workflow or []) - known)
        if unknown and known:
            log.warning(
                "event=alert_rule_unknown_workflow rule=%s source=%s workflows=%s configured=%s",
                item.rule.name,
                item.source,
                ",".join(unknown),
                ",".join(sorted(known)),
            )


def _mtime(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None
