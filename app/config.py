"""The configuration as the assembly loads it: the core schema (triage.settings), then what the parts
validate themselves (the alert-rule language), so that every command fails early with one message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts import inline_rules
from triage.settings import Settings, load_settings


def load_config(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Settings from the file, TRIAGE_* variables and flags, with every part's own checks passed."""
    return checked(load_settings(config_file, overrides, environ))


def checked(settings: Settings) -> Settings:
    """`settings` once the parts accept them; ConfigError names the file, the field and the fix."""
    inline_rules(settings)
    return settings


def client_settings(args: Any) -> Settings:
    """The settings of a command that may ask a running server (report, discover): the config file with
    the command's --store, --log-level and the server's --host/--port given on the command line."""
    names = ("store", "log_level", "host", "port")
    overrides = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return load_config(getattr(args, "config", None), overrides)
