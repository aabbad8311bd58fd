"""Spans/s into otel_traces: the native Protobuf path (collector.native) against the naive Python path.

Run: python bench/native_insert.py [--requests 200] [--spans 512] [--batch 40] [--repeat 3]

Both paths start from the same pre-serialized OTLP ExportTraceServiceRequests (realistic spans:
9-10 string/int attributes, a service.name resource, some events and links) and write into a
throw-away chDB store. The native path length-delimits the bytes and hands them to ClickHouse's
Protobuf input format; the naive path decodes with opentelemetry-proto, flattens to Python column
lists (collector.flatten) and inserts column-oriented. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

from collector import flatten, native  # noqa: E402
from triage.store import Store  # noqa: E402

SERVICES = ["adt-gateway", "hl7-router", "billing-api", "orders-svc", "lab-results", "pharmacy", "emr-sync"]
ROUTES = ["/patients/{id}", "/orders", "/orders/{id}/status", "/claims", "/labs/{id}", "/hl7/inbound"]
METHODS = ["GET", "POST", "PUT"]


def _set(kv: Any, key: str, value: str | int) -> None:
    kv.key = key
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value


def build_request(rng: random.Random, spans: int, now_ns: int) -> bytes:
    """One serialized request of `spans` realistic spans from one service."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    service = rng.choice(SERVICES)
    for key, value in (
        ("service.name", service),
        ("service.version", "2.4.1"),
        ("deployment.environment", "prod"),
        ("host.name", f"node-{rng.randrange(12)}"),
    ):
        _set(rs.resource.attributes.add(), key, value)
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.48b0"
    trace_id = rng.randbytes(16)
    for i in range(spans):
        if i % 16 == 0:
            trace_id = rng.randbytes(16)
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = rng.randbytes(8)
        if i % 16:
            span.parent_span_id = rng.randbytes(8)
        span.name = f"{rng.choice(METHODS)} {rng.choice(ROUTES)}"
        span.kind = rng.choice((1, 2, 3))
        start = now_ns - rng.randrange(60_000_000_000)
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + rng.randrange(50_000, 900_000_000)
        attrs: list[tuple[str, str | int]] = [
            ("http.request.method", rng.choice(METHODS)),
            ("http.route", rng.choice(ROUTES)),
            ("http.response.status_code", rng.choice((200, 200, 200, 201, 404, 500))),
            ("url.scheme", "https"),
            ("server.address", f"{service}.internal"),
            ("server.port", 8443),
            ("network.peer.address", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"),
            ("user_agent.original", "python-requests/2.32"),
            ("tenant.id", f"hosp-{rng.randrange(40):03d}"),
        ]
        if i % 2:
            attrs.append(("message.id", f"MSG{rng.randrange(10**9):09d}"))
        for attr_key, attr_value in attrs:
            _set(span.attributes.add(), attr_key, attr_value)
        if i % 5 == 0:
            event = span.events.add()
            event.time_unix_nano = start + 1000
            event.name = "exception"
            _set(event.attributes.add(), "exception.type", "TimeoutError")
            _set(event.attributes.add(), "exception.message", "upstream timed out after 30s")
        if i % 10 == 0:
            link = span.links.add()
            link.trace_id = rng.randbytes(16)
            link.span_id = rng.randbytes(8)
            _set(link.attributes.add(), "messaging.operation", "process")
        span.status.code = 2 if i % 23 == 0 else 0
    return req.SerializeToString()


def run_native(store: Store, payloads: list[bytes], batch: int) -> None:
    for i in range(0, len(payloads), batch):
        native.insert_trace_requests(store, payloads[i : i + batch])


def run_naive(store: Store, payloads: list[bytes], batch: int) -> None:
    for i in range(0, len(payloads), batch):
        messages = [ExportTraceServiceRequest.FromString(p) for p in payloads[i : i + batch]]
        cols = flatten.trace_columns(messages)
        names = list(cols)
        store.insert("otel_traces", [cols[n] for n in names], names, column_oriented=True)


def measure(
    name: str, fn: Any, store: Store, payloads: list[bytes], batch: int, spans: int, repeat: int
) -> dict[str, Any]:
    """Best-of-`repeat` wall time of writing every payload, after one warm-up batch."""
    fn(store, payloads[:batch], batch)  # warm-up: schema parse, first part, caches
    best = float("inf")
    for _ in range(repeat):
        store.command("TRUNCATE TABLE otel_traces")
        started = time.perf_counter()
        fn(store, payloads, batch)
        best = min(best, time.perf_counter() - started)
    rows = int(store.command("SELECT count() FROM otel_traces"))
    if rows != spans:
        raise SystemExit(f"{name}: expected {spans} rows in otel_traces, found {rows}")
    return {"path": name, "seconds": best, "spans_per_s": spans / best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--spans", type=int, default=512, help="spans per request")
    parser.add_argument("--batch", type=int, default=40, help="requests per insert (40 × 512 ≈ 20k spans)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rng = random.Random(42)
    now_ns = time.time_ns()  # recent: otel_traces' TTL drops rows older than the raw retention
    payloads = [build_request(rng, args.spans, now_ns) for _ in range(args.requests)]
    total = args.requests * args.spans
    mib = sum(map(len, payloads)) / 2**20

    # chDB may still be merging in the background when the directory goes: ignore cleanup errors.
    with tempfile.TemporaryDirectory(prefix="triage-bench-", ignore_cleanup_errors=True) as tmp:
        results = []
        for name, fn, db, batch in (
            ("native", run_native, "bench_native", args.batch),
            ("native-one-insert", run_native, "bench_native", args.requests),
            ("naive", run_naive, "bench_naive", args.batch),
        ):
            store = Store(f"chdb://{tmp}/chdb?database={db}")
            store.migrate()
            result = measure(name, fn, store, payloads, batch, total, args.repeat)
            result["requests_per_insert"] = batch
            results.append(result)

    naive = next(r for r in results if r["path"] == "naive")["spans_per_s"]
    print(
        f"{args.requests} requests × {args.spans} spans = {total} spans, {mib:.1f} MiB of OTLP protobuf, "
        f"best of {args.repeat}, {os.cpu_count()} CPUs"
    )
    print(f"{'path':<20} {'req/insert':>10} {'seconds':>8} {'spans/s':>10} {'vs naive':>8}")
    for r in results:
        print(
            f"{r['path']:<20} {r['requests_per_insert']:>10} {r['seconds']:>8.3f} "
            f"{r['spans_per_s']:>10,.0f} {r['spans_per_s'] / naive:>7.1f}×"
        )
    print(
        json.dumps(
            {
                "spans": total,
                "requests": args.requests,
                "spans_per_request": args.spans,
                "cpus": os.cpu_count(),
                **{f"{r['path'].replace('-', '_')}_spans_per_s": round(r["spans_per_s"]) for r in results},
                "speedup": round(results[0]["spans_per_s"] / naive, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
