"""Self-metrics of raw log ingest and file tailing, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LOG_RECORDS = Counter(
    "triage_collector_log_records",
    "Log records made from raw lines, by source and whether a profile parsed them (parsed|unparsed)",
    ["source", "result"],
)
TAIL_FILES = Gauge("triage_collector_log_tail_files", "Files the log tailer follows", ["source"])
TAIL_ERRORS = Counter(
    "triage_collector_log_tail_errors", "Failed polls of a tailed log source (retried next poll)", ["source"]
)
