"""Alerts: rules over business and technical signals, alert state, silences, delivery, rule export.

The small public surface other parts use:

- `run_alerts(runtime, stop)`: the background evaluator of `triage serve`;
- `Evaluator(store, settings)`: one evaluator (`evaluate(now)` blocking, `cycle(client)` async);
- `list_alerts`, `get_alert`, `alert_events`: alert state as stored;
- `create_silence`, `list_silences`, `get_silence`, `expire_silence`: silences;
- `configured_rules`, `api_rules`, `save_api_rule`, `delete_api_rule`, `rule_from_api`: rules;
- `export_prometheus(rules, settings)`: equivalent Prometheus alerting rules (YAML text).
"""

from __future__ import annotations

from alerts.alert import ACTIVE, FIRING, PENDING, RESOLVED, Alert
from alerts.evaluator import CycleReport, Evaluator, run_alerts
from alerts.export import export_prometheus
from alerts.rules import LoadedRule, api_rules, delete_api_rule, pack_names, rule_from_api, save_api_rule
from alerts.rules import configured as configured_rules
from alerts.silences import (
    Matcher,
    Silence,
    SilenceRequest,
    create_silence,
    expire_silence,
    get_silence,
    list_silences,
)
from alerts.state import alert_events, get_alert, list_alerts
from alerts.webhooks import SIGNATURE_HEADER, TargetStatus, dead_letters, sign

__all__ = [
    "ACTIVE",
    "FIRING",
    "PENDING",
    "RESOLVED",
    "SIGNATURE_HEADER",
    "Alert",
    "CycleReport",
    "Evaluator",
    "LoadedRule",
    "Matcher",
    "Silence",
    "SilenceRequest",
    "TargetStatus",
    "alert_events",
    "api_rules",
    "configured_rules",
    "create_silence",
    "dead_letters",
    "delete_api_rule",
    "expire_silence",
    "export_prometheus",
    "get_alert",
    "get_silence",
    "list_alerts",
    "list_silences",
    "pack_names",
    "rule_from_api",
    "run_alerts",
    "save_api_rule",
    "sign",
]
