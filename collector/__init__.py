"""Collector: OTLP receivers (HTTP, gRPC), integration-engine logs, queue-lag pollers, PHI redaction and
the write pipeline that batches everything into the store.

The small public surface the assembly and the other parts use:

- `Pipeline(store, ingest)`: the bounded, batching writer; `Receiver(pipeline, redactor)`: validate,
  redact and enqueue decoded OTLP requests; `Redactor`, `load_redaction_key`: PHI redaction;
- `create_otlp_http_app(receiver, ingest, keys)`, `create_otlp_grpc_server(...)`: the OTLP front doors;
- `tail_sources(...)`, `ingest_lines`, `split_lines`, `decompress`, `find_log_source`,
  `builtin_log_sources`: integration-engine logs;
- `run_pollers(store, settings, stop)`, `current_queue_states`, `write_samples`, `QueueSample`,
  `QueueState`, `PUSH_SOURCE`: queue lag.
"""

from __future__ import annotations

from collector.logs import builtin_source_names as builtin_log_sources
from collector.logs import find_source as find_log_source
from collector.logs import ingest_lines, split_lines, tail_sources
from collector.otlp import decompress
from collector.otlp_grpc import create_otlp_grpc_server
from collector.otlp_http import create_otlp_http_app, read_body
from collector.pipeline import Pipeline
from collector.queues import (
    PUSH_SOURCE,
    QueueSample,
    QueueState,
    current_queue_states,
    run_pollers,
    write_samples,
)
from collector.receiver import Receiver
from collector.redaction import Redactor
from collector.redaction import load_key as load_redaction_key
from collector.wal import WalError, WriteAheadLog

__all__ = [
    "PUSH_SOURCE",
    "Pipeline",
    "QueueSample",
    "QueueState",
    "Receiver",
    "Redactor",
    "WalError",
    "WriteAheadLog",
    "builtin_log_sources",
    "create_otlp_grpc_server",
    "create_otlp_http_app",
    "current_queue_states",
    "decompress",
    "find_log_source",
    "ingest_lines",
    "load_redaction_key",
    "read_body",
    "run_pollers",
    "split_lines",
    "tail_sources",
    "write_samples",
]
