"""Loading the configuration: one YAML file, then `TRIAGE_*` environment variables, then CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from triage.errors import ConfigError
from triage.settings.formatting import format_validation_error
from triage.settings.schema import Settings

ENV_PREFIX = "TRIAGE_"


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


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, mappings merged key by key, anything else replaced."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
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
    merged = deep_merge(deep_merge(data, env), {k: v for k, v in (overrides or {}).items() if v is not None})
    source = str(config_file) if config_file else "flags and TRIAGE_* environment"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, merged)) from exc
    settings.source = source
    return settings
