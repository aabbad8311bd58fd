"""The correlator's metrics, declared once, and the business gauges (it owns the transactions table)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAG = Gauge("triage_correlator_lag_seconds", "Age of the newest ingested data the correlator has processed")
TRANSACTIONS = Gauge("triage_transactions", "Business transactions by state", ["workflow", "state", "criticality"])
VALUE_AT_RISK = Gauge(
    "triage_transaction_value_at_risk",
    "Value of stuck (stalled, blocked, failed) transactions",
    ["workflow", "facility"],
)
CYCLE_SECONDS = Histogram(
    "triage_correlator_cycle_seconds",
    "Time of one correlation cycle",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FORECAST_READ_SECONDS = Histogram(
    "triage_correlator_forecast_read_seconds",
    "Time of one read of the breach forecasts' wait history (correlator/forecast.py)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
EVENTS = Counter("triage_correlator_events", "Business events written")
EVALUATED = Counter("triage_correlator_transactions_evaluated", "Transactions re-evaluated")
UNCHANGED = Counter(
    "triage_correlator_transactions_unchanged",
    "Transactions re-evaluated to the verdict already stored, so not written again",
)
ERRORS = Counter("triage_correlator_errors", "Correlation cycles that failed (retried next interval)")
STUCK_BY_CAUSE = Gauge(
    "triage_stuck_transactions_by_cause",
    "Stuck transactions by cause",
    ["workflow", "cause_kind", "cause_component"],
)
_LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300)
SPAN_LAG = Histogram(
    "triage_correlator_span_lag_seconds",
    "Span received (ingested) to its transaction's state written, per span",
    buckets=_LATENCY_BUCKETS,
)
DETECTION = Histogram(
    "triage_correlator_detection_seconds",
    "SLA breach (due time) to the transaction judged stalled or blocked",
    buckets=_LATENCY_BUCKETS,
)
# Stuck transactions in full detail, the gauges exported Prometheus alerting rules are written over.
_STUCK_LABELS = ["workflow", "state", "facility", "facility_name", "criticality", "cause_kind", "cause_component"]
STUCK = Gauge("triage_stuck_transactions", "Stuck (stalled, blocked, failed) transactions", _STUCK_LABELS)
STUCK_VALUE = Gauge("triage_stuck_transactions_value", "Value of stuck transactions", _STUCK_LABELS)
STUCK_OLDEST = Gauge(
    "triage_stuck_transactions_oldest_seconds",
    "Age of the oldest stuck transaction (since its cause started, else its last update)",
    _STUCK_LABELS,
)
AT_RISK = Gauge(
    "triage_transactions_at_risk",
    "In-progress transactions likely to miss their SLA by their breach forecast",
    ["workflow", "facility", "criticality"],
)
AT_RISK_VALUE = Gauge(
    "triage_transactions_at_risk_value",
    "Value of in-progress transactions likely to miss their SLA by their breach forecast",
    ["workflow", "facility", "criticality"],
)
