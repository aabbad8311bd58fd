"""Alerting self-metrics and the technical gauges (queues, dependencies) Prometheus rules are written over,
declared once. The business gauges (triage_stuck_transactions*) are the correlator's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVALUATIONS = Counter("triage_alerts_evaluations", "Alert evaluation cycles run")
EVALUATION_FAILURES = Counter(
    "triage_alerts_evaluation_failures", "Rule evaluations that failed (the rule's alerts keep their state)", ["rule"]
)
EVALUATION_SECONDS = Histogram(
    "triage_alerts_evaluation_seconds",
    "Time of one alert evaluation cycle",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RULES = Gauge("triage_alerts_rules", "Alert rules loaded, by source (config, file, pack, api)", ["source"])
RULE_LOAD_FAILURES = Counter(
    "triage_alerts_rule_load_failures", "Times a rules file or stored rule could not be loaded", ["source"]
)
ALERTS = Gauge(
    "triage_alerts_active",
    "Alerts by rule, severity and state (pending, firing, silenced)",
    ["rule", "severity", "state"],
)
SILENCES = Gauge("triage_alerts_silences_active", "Silences in effect now")
NOTIFICATIONS = Counter(
    "triage_alerts_notifications",
    "Notifications by channel (alertmanager, webhook) and outcome (sent, retried, failed, dead_letter)",
    ["channel", "outcome"],
)
DELIVERY_FAILURES = Counter(
    "triage_alerts_delivery_failures", "Failed delivery attempts by channel and target", ["channel", "target"]
)
DEAD_LETTERS = Counter("triage_alerts_dead_letters", "Notifications given up after every retry", ["channel", "target"])
DELIVERY_SECONDS = Histogram(
    "triage_alerts_delivery_seconds",
    "Time of one delivery attempt",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Technical gauges that exported Prometheus rules are written over (refreshed every evaluation cycle).
QUEUE_STATUS = Gauge(
    "triage_queue_status",
    "1 for a queue's current status (ok, lagging, stalled, stopped, unknown)",
    ["queue", "status"],
)
QUEUE_BACKLOG = Gauge("triage_queue_backlog", "Messages waiting in a queue", ["queue"])
DEPENDENCY_ERROR_RATIO = Gauge(
    "triage_dependency_error_ratio", "Share of failed calls to a service over alerts.signal_window", ["service"]
)
DEPENDENCY_CALLS = Gauge("triage_dependency_calls", "Calls to a service over alerts.signal_window", ["service"])
