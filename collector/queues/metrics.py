"""The queue pollers' self-metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

POLLS = Counter("triage_queue_polls", "Queue polls by config entry and outcome", ["queue", "outcome"])
POLL_SECONDS = Histogram(
    "triage_queue_poll_duration_seconds",
    "Time of one poll of a queue config entry",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
