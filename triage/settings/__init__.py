"""Settings: the configuration's schema (`schema`), how it is loaded (`loading`) and how its errors read
(`formatting`). Everything a part needs is importable from here."""

from __future__ import annotations

from triage.settings.formatting import field_path, format_validation_error
from triage.settings.loading import ENV_PREFIX, deep_merge, load_settings, read_yaml
from triage.settings.schema import (
    Alerts,
    ApiKey,
    Auth,
    Correlation,
    Facility,
    Ingest,
    Listen,
    LogSource,
    Queue,
    Redaction,
    Retention,
    Settings,
    Sla,
    Step,
    StepMatch,
    Wal,
    Webhook,
    Workflow,
    default_store,
)
from triage.settings.types import Model, Names, Regex, SqlRegex, check_re2, check_regex, one_or_many

__all__ = [
    "ENV_PREFIX",
    "Alerts",
    "ApiKey",
    "Auth",
    "Correlation",
    "Facility",
    "Ingest",
    "Listen",
    "LogSource",
    "Model",
    "Names",
    "Queue",
    "Redaction",
    "Regex",
    "Retention",
    "Settings",
    "SqlRegex",
    "Sla",
    "Step",
    "StepMatch",
    "Wal",
    "Webhook",
    "Workflow",
    "check_re2",
    "check_regex",
    "deep_merge",
    "default_store",
    "field_path",
    "format_validation_error",
    "load_settings",
    "one_or_many",
    "read_yaml",
]
