"""Alerts: rules over business and technical signals, alert state, silences, delivery, rule export.

The small public surface other parts use:

- `run_alerts(evaluator, stop)`: the background evaluator of `triage serve`;
- `AlertRule`, `parse_rules`, `inline_rules(settings)`: the rule language (alerts/language.py);
- `Evaluator(store, settings)`: one evaluator (`evaluate(now)` blocking, `cycle(client)` async);
- `list_alerts`, `get_alert`, `alert_events`: alert state as stored;
- `create_silence`, `list_silences`, `get_silence`, `expire_silence`: silences;
- `configured_rules`, `api_rules`, `save_api_rule`, `delete_api_rule`, `rule_from_api`: rules;
- `export_prometheus(rules, settings)`: equivalent Prometheus alerting rules (YAML text).
"""

from __future__ import annotations

from alerts.alert import ACTIVE, FIRING, PENDING, RESOLVED, Alert, AlertEvent
from alerts.evaluator import CycleReport, Evaluator, run_alerts
from alerts.export import export_prometheus
from alerts.language import AlertRule, parse_rules
from alerts.language import configured_inline as inline_rules
from alerts.rules import LoadedRule, api_rules, delete_api_rule, pack_names, rule_from_api, save_api_rule
from alerts.rules import configured as configured_rules
from alerts.rules import load_file as load_rules_file
from alerts.silences import (
    Matcher,
    Silence,
    SilenceRequest,
    create_silence,
    expire_silence,
    get_silence,
    list_silences,
)
from alerts.state import alert_events, get_alert, list_alerts, recent_alerts
from alerts.webhooks import SIGNATURE_HEADER, TargetStatus, dead_letters, sign

__all__ = [
    "ACTIVE",
    "FIRING",
    "PENDING",
    "RESOLVED",
    "SIGNATURE_HEADER",
    "Alert",
    "AlertEvent",
    "AlertRule",
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
    "inline_rules",
    "list_alerts",
    "list_silences",
    "load_rules_file",
    "pack_names",
    "recent_alerts",
    "parse_rules",
    "rule_from_api",
    "run_alerts",
    "save_api_rule",
    "sign",
]
