"""Ingest throughput: the naive in-process ceiling against `triage serve` end to end over HTTP.

Run: python bench/ingest.py [--requests 400] [--spans 512] [--clients 4] [--profile FILE]
(figures and what they mean: docs/operations.md, "Ingest against the naive ceiling")

(1) Ceiling: the same pre-serialized 512-span OTLP requests decoded (opentelemetry-proto),
    flattened to Python columns (collector.flatten) and inserted into a chDB store in 20k-row
    batches, in this process, with no HTTP.
(2) End to end: `triage serve` runs as its own process on a fresh data directory; a separate
    load process POSTs the requests over HTTP (keep-alive, `--clients` connections); the clock runs
    from its first POST until the server's /metrics says every span is written
    (triage_store_written_rows_total).
    Run twice: with the write-ahead log (the default: each request fsynced before its 200) and
    without it (ingest.wal.enabled=false), to show what durability costs.
Prints spans/s of all three, the ratios and the server's peak RSS; with --profile, py-spy samples
the WAL-on server during the run and the top functions by own time are printed. Then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.native_insert import build_request  # noqa: E402
from bench.server import running_server  # noqa: E402
from collector import flatten  # noqa: E402
from triage.store import Store  # noqa: E402

console = Console()


def ceiling(payloads: list[bytes], spans: int, data_dir: Path) -> float:
    """Spans/s of decode + flatten + insert in this process (the naive path)."""
    store = Store(f"chdb://{data_dir}?database=bench_ceiling")
    store.migrate()
    per_batch = max(1, 20_000 // spans)
    started = time.perf_counter()
    for i in range(0, len(payloads), per_batch):
        messages = [ExportTraceServiceRequest.FromString(p) for p in payloads[i : i + per_batch]]
        cols = flatten.trace_columns(messages)
        store.insert("otel_traces", list(cols.values()), list(cols), column_oriented=True)
    elapsed = time.perf_counter() - started
    written = int(store.command("SELECT count() FROM otel_traces"))
    assert written == len(payloads) * spans, f"ceiling wrote {written} rows"
    return written / elapsed


def _load(url: str, payloads: list[bytes], clients: int, ready: Any = None) -> None:
    """POST every payload with `clients` keep-alive connections; retry on 429/503 as OTLP says.

    `ready` (an Event) is set just before the first POST: the clock leaves out this process's start.
    """
    from concurrent.futures import ThreadPoolExecutor

    def worker(chunk: list[bytes]) -> None:
        with httpx.Client(timeout=60) as client:
            for body in chunk:
                while True:
                    r = client.post(url, content=body, headers={"Content-Type": "application/x-protobuf"})
                    if r.status_code == 200:
                        break
                    if r.status_code in (429, 503):
                        time.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    raise RuntimeError(f"server answered {r.status_code}: {r.text[:200]}")

    chunks = [payloads[i::clients] for i in range(clients)]
    if ready is not None:
        ready.set()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, chunks))


def _written(api: str) -> float:
    for line in httpx.get(f"{api}/metrics", timeout=10).text.splitlines():
        if line.startswith('triage_store_written_rows_total{table="otel_traces"}'):
            return float(line.split()[-1])
    return 0.0


def end_to_end(
    payloads: list[bytes], spans: int, clients: int, data_dir: Path, profile: Path | None, wal: bool = True
) -> tuple[float, int, str]:
    """Spans/s from the first POST until every span is written, peak RSS (KiB), profile summary."""
    with running_server(data_dir, env={"TRIAGE_INGEST__WAL__ENABLED": str(wal).lower()}) as server:
        spy = None
        if profile is not None:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--output",
                    str(profile),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        total = len(payloads) * spans
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        loader = context.Process(target=_load, args=(f"{server.otlp_http}/v1/traces", payloads, clients, ready))
        loader.start()
        # The clock starts at the first POST, as the ceiling's starts at its first decode: the load
        # process's start (imports, the payloads' transfer) is neither side's work.
        while not ready.wait(0.1):
            if not loader.is_alive():
                raise RuntimeError(f"load process failed with exit code {loader.exitcode}")
        started = time.perf_counter()
        while _written(server.api) < total:
            time.sleep(0.02)
            if not loader.is_alive() and loader.exitcode not in (0, None):
                raise RuntimeError(f"load process failed with exit code {loader.exitcode}")
        elapsed = time.perf_counter() - started
        loader.join()
        rss = 0
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
        summary = ""
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
            summary = _top_functions(profile) if profile and profile.exists() else "(py-spy wrote nothing)"
        return total / elapsed, rss, summary


def _top_functions(path: Path, n: int = 12) -> str:
    """The functions with the most own samples in a py-spy raw (collapsed) profile."""
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    return "\n".join(f"{100 * c / total:5.1f}%  {frame}" for frame, c in own.most_common(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=400, help="requests to send (400: a run long enough to be steady)"
    )
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the server to write and summarize")
    args = parser.parse_args()

    rng = random.Random(7)
    now = time.time_ns()
    payloads = [build_request(rng, args.spans, now) for _ in range(args.requests)]
    work = Path(tempfile.mkdtemp(prefix="triage-bench-"))
    try:
        naive = ceiling(payloads, args.spans, work / "ceiling")
        e2e, rss_kib, profile = end_to_end(payloads, args.spans, args.clients, work / "e2e", args.profile)
        no_wal, _, _ = end_to_end(payloads, args.spans, args.clients, work / "e2e-no-wal", None, wal=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"ingest: {args.requests} requests x {args.spans} spans, {os.cpu_count()} cores")
    table.add_column("path")
    table.add_column("spans/s", justify="right")
    table.add_row("ceiling: decode + flatten + insert in-process", f"{naive:,.0f}")
    table.add_row(f"end to end: HTTP -> triage serve -> persisted ({args.clients} clients)", f"{e2e:,.0f}")
    table.add_row("  the same without the write-ahead log", f"{no_wal:,.0f}")
    table.add_row("ratio end-to-end / ceiling (WAL on)", f"{e2e / naive:.2f}x")
    table.add_row("cost of the write-ahead log", f"{100 * (1 - e2e / no_wal):.1f}%")
    table.add_row("server peak RSS", f"{rss_kib / 1024:,.0f} MiB")
    console.print(table)
    if profile:
        console.print("[bold]server profile, own time:[/]\n" + profile)
    print(
        json.dumps(
            {
                "bench": "ingest",
                "requests": args.requests,
                "spans_per_request": args.spans,
                "ceiling_spans_per_s": round(naive),
                "e2e_spans_per_s": round(e2e),
                "e2e_no_wal_spans_per_s": round(no_wal),
                "ratio": round(e2e / naive, 2),
                "wal_cost_pct": round(100 * (1 - e2e / no_wal), 1),
                "server_peak_rss_mib": round(rss_kib / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
