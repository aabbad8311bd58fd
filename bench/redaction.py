"""PHI redaction cost: receiver spans/s (decode + validate + redact) with redaction off and on.

Run: python bench/redaction.py [--requests 100] [--spans 512]

Three inputs of the same shape: clean requests (no PHI: the common case, one RE2 probe each),
requests with PHI in one span attribute each, and requests with PHI in every span. Prints a
table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.native_insert import build_request  # noqa: E402
from collector.nested import has_nested_values  # noqa: E402
from collector.redaction import Redactor  # noqa: E402
from collector.validate import validate_traces  # noqa: E402


def _with_phi(payload: bytes, every: int) -> bytes:
    req = ExportTraceServiceRequest.FromString(payload)
    spans = req.resource_spans[0].scope_spans[0].spans
    for i in range(0, len(spans), every):
        spans[i].attributes.add(
            key="patient.note"
        ).value.string_value = f"MRN 00{481516 + i} call 555-201-{7700 + i % 99}"
    return req.SerializeToString()


def receive(payloads: list[bytes], redactor: Redactor | None) -> float:
    """Spans/s of what the receiver does before queueing: parse, validate, redact, nested check."""
    spans = 0
    started = time.perf_counter()
    for body in payloads:
        message = ExportTraceServiceRequest.FromString(body)
        decoded = validate_traces(message)
        payload: bytes | None = body
        if redactor is not None and redactor.redact_message(message, body):
            payload = None
        has_nested_values(message, payload)
        spans += decoded.accepted
    return spans / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--spans", type=int, default=512)
    args = parser.parse_args()
    rng = random.Random(3)
    clean = [build_request(rng, args.spans, time.time_ns()) for _ in range(args.requests)]
    inputs = {
        "clean": clean,
        "phi in 1 span/request": [_with_phi(p, args.spans) for p in clean],
        "phi in every span": [_with_phi(p, 1) for p in clean],
    }
    redactor = Redactor(b"bench-key")
    figures: dict[str, dict[str, float]] = {}
    table = Table(title=f"receiver spans/s, {args.requests} requests x {args.spans} spans")
    for column in ("input", "redaction off", "redaction on", "cost"):
        table.add_column(column, justify="right" if column != "input" else "left")
    for name, payloads in inputs.items():
        off = max(receive(payloads, None) for _ in range(3))
        on = max(receive(payloads, redactor) for _ in range(3))
        figures[name] = {"off": round(off), "on": round(on)}
        table.add_row(name, f"{off:,.0f}", f"{on:,.0f}", f"{100 * (1 - on / off):.0f}%")
    Console().print(table)
    print(json.dumps({"bench": "redaction", **figures}))


if __name__ == "__main__":
    main()
