"""The correlator's metrics, declared once."""

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
EVENTS = Counter("triage_correlator_events", "Business events written")
EVALUATED = Counter("triage_correlator_transactions_evaluated", "Transactions re-evaluated")
ERRORS = Counter("triage_correlator_errors", "Correlation cycles that failed (retried next interval)")
STUCK_BY_CAUSE = Gauge(
    "triage_stuck_transactions_by_cause",
    "Stuck transactions by cause",
    ["workflow", "cause_kind", "cause_component"],
)
