"""The collector's self-metrics, declared once, in the OpenTelemetry Collector's naming spirit."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACCEPTED = {
    "traces": Counter("triage_receiver_accepted_spans", "Spans accepted by a receiver", ["transport"]),
    "logs": Counter("triage_receiver_accepted_log_records", "Log records accepted by a receiver", ["transport"]),
    "metrics": Counter(
        "triage_receiver_accepted_metric_points", "Metric data points accepted by a receiver", ["transport"]
    ),
}
REFUSED = {
    "traces": Counter(
        "triage_receiver_refused_spans", "Spans refused (invalid, or buffer full)", ["transport", "reason"]
    ),
    "logs": Counter(
        "triage_receiver_refused_log_records",
        "Log records refused (invalid, or buffer full)",
        ["transport", "reason"],
    ),
    "metrics": Counter(
        "triage_receiver_refused_metric_points",
        "Metric data points refused (invalid, or buffer full)",
        ["transport", "reason"],
    ),
}
REQUESTS = Counter("triage_receiver_requests", "OTLP export requests by outcome", ["transport", "signal", "outcome"])
WRITTEN_ROWS = Counter("triage_store_written_rows", "Rows written to the store", ["table"])
WRITE_ERRORS = Counter("triage_store_write_errors", "Failed store writes (retried, never dropped)", ["table"])
WRITE_SECONDS = Histogram(
    "triage_store_write_duration_seconds",
    "Time of one batch insert",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BUFFER_ROWS = Gauge("triage_collector_buffer_rows", "Rows accepted and waiting to be written")
BUFFER_BYTES = Gauge("triage_collector_buffer_bytes", "Bytes (as serialized) accepted and waiting to be written")
BUFFER_CAPACITY = Gauge("triage_collector_buffer_capacity_rows", "Rows the write buffer holds before refusing")
SPOOLED_ROWS = Counter("triage_collector_spooled_rows", "Rows written to the disk spool because the store was down")
WAL_BYTES = Counter("triage_collector_wal_written_bytes", "Bytes appended to the write-ahead log")
WAL_SYNC_SECONDS = Histogram(
    "triage_collector_wal_sync_seconds",
    "Time of one write-ahead log fsync (one sync covers every request written before it)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
WAL_REPLAYED = Counter(
    "triage_collector_wal_replayed_requests",
    "Requests read back from the write-ahead log at start, by outcome (written, already_stored)",
    ["outcome"],
)
