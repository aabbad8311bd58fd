"""Memory with a full write buffer: the store takes nothing, clients keep sending; the buffer's limit
(`ingest.buffer_max_bytes`, rows too) must hold the server's memory, with requests refused (429/503)
rather than the process growing until a container's memory limit kills it.

Run: python bench/full_buffer.py [--buffer-mib 256] [--seconds 20] [--spans 512]

`triage serve` runs as its own process with writes held back (a batch delay of an hour and a huge
batch size: nothing leaves the buffer), so every accepted request stays in memory. Two clients post
512-span requests until refused, and keep posting for `--seconds`. Prints the buffer's bytes and rows
as the server reports them, refusals, and the server's peak RSS. Then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.native_insert import build_request  # noqa: E402
from bench.server import running_server  # noqa: E402


def _gauge(api: str, name: str) -> float:
    for line in httpx.get(f"{api}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffer-mib", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--spans", type=int, default=512)
    args = parser.parse_args()
    rng = random.Random(11)
    payloads = [build_request(rng, args.spans, time.time_ns()) for _ in range(64)]
    env = {
        "TRIAGE_INGEST__BATCH_MAX_DELAY": "3600s",
        "TRIAGE_INGEST__BATCH_MAX_ROWS": "100000000",
        "TRIAGE_INGEST__BUFFER_MAX_ROWS": "100000000",
        "TRIAGE_INGEST__BUFFER_MAX_BYTES": str(args.buffer_mib << 20),
    }
    work = Path(tempfile.mkdtemp(prefix="triage-bench-"))
    outcomes = {"accepted": 0, "refused": 0}
    try:
        with running_server(work / "data", env=env) as server:
            idle_rss = _peak_rss_mib(server.pid)
            stop = threading.Event()

            def client(offset: int) -> None:
                with httpx.Client(timeout=30) as http:
                    i = offset
                    while not stop.is_set():
                        r = http.post(
                            f"{server.otlp_http}/v1/traces",
                            content=payloads[i % len(payloads)],
                            headers={"Content-Type": "application/x-protobuf"},
                        )
                        outcomes["accepted" if r.status_code == 200 else "refused"] += 1
                        i += 1
                        if r.status_code != 200:
                            time.sleep(0.02)

            clients = [threading.Thread(target=client, args=(n,)) for n in range(2)]
            for c in clients:
                c.start()
            time.sleep(args.seconds)
            stop.set()
            for c in clients:
                c.join(30)
            buffered_bytes = _gauge(server.api, "triage_collector_buffer_bytes")
            buffered_rows = _gauge(server.api, "triage_collector_buffer_rows")
            peak = _peak_rss_mib(server.pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"full write buffer: limit {args.buffer_mib} MiB, {args.seconds:.0f} s of load")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("requests accepted / refused (429, 503)", f"{outcomes['accepted']:,} / {outcomes['refused']:,}")
    table.add_row("buffer when full (as serialized)", f"{buffered_bytes / 2**20:,.0f} MiB, {buffered_rows:,.0f} rows")
    table.add_row("server RSS at start", f"{idle_rss:,.0f} MiB")
    table.add_row("server peak RSS with the buffer full", f"{peak:,.0f} MiB")
    Console().print(table)
    print(
        json.dumps(
            {
                "bench": "full_buffer",
                "buffer_limit_mib": args.buffer_mib,
                "accepted": outcomes["accepted"],
                "refused": outcomes["refused"],
                "buffered_mib": round(buffered_bytes / 2**20),
                "buffered_rows": round(buffered_rows),
                "idle_rss_mib": round(idle_rss),
                "peak_rss_mib": round(peak),
            }
        )
    )


if __name__ == "__main__":
    main()
