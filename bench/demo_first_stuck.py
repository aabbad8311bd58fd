"""How long a new user waits to see stuck work: `triage demo` start → first stuck transaction in the API.

Run: python bench/demo_first_stuck.py [--speed 40] [--timeout 90]

Runs `triage demo` twice as its own process (fresh data directory, free ports): as shipped
(history of the last 2 days written first) and with `--backfill 0` (live traffic only). From the
moment the command starts it polls the API every 0.25 s and records when it answers, when the
first transaction and the first stuck one (stalled, blocked or failed) are listed, and when the
first stuck transaction of the live run is (started after the command). Target: ≤ 60 s to the
first stuck transaction on the 2-core development machine. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.server import stop_process  # noqa: E402
from tests.conftest import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = 60.0
STUCK = ["stalled", "blocked", "failed"]  # repeated: the comma form is refused (422) for now


def measure(speed: float, backfill: str, timeout: float) -> dict[str, float | None]:
    """Seconds from the command's start to each milestone (None when not reached within `timeout`)."""
    data = Path(tempfile.mkdtemp(prefix="triage-bench-demo-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    flags = (
        f"--store chdb://{data} --port {port} --otlp-http-port {free_port()} --otlp-grpc-port {free_port()} "
        f"--speed {speed:g} --backfill {backfill} --duration {timeout + 10:g}"
    )
    command = [sys.executable, "-m", "app.cli", "demo", *flags.split()]
    marks: dict[str, float | None] = dict.fromkeys(("api", "first_transaction", "first_stuck", "first_live_stuck"))
    began = time.monotonic()
    wall = datetime.now(UTC)
    demo = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    try:
        with httpx.Client(timeout=5) as client:
            while time.monotonic() - began < timeout and None in marks.values():
                _poll(client, api, wall, marks, time.monotonic() - began)
                time.sleep(0.25)
    finally:
        stop_process(demo, signal.SIGINT, 30)
        shutil.rmtree(data, ignore_errors=True)
    return marks


def _poll(client: httpx.Client, api: str, wall: datetime, marks: dict[str, float | None], now: float) -> None:
    try:
        if marks["api"] is None:
            if client.get(f"{api}/healthz").status_code != 200:
                return
            marks["api"] = now
        if marks["first_transaction"] is None and _items(client, f"{api}/api/v1/transactions", {"limit": 1}):
            marks["first_transaction"] = now
        stuck = _items(client, f"{api}/api/v1/transactions", {"state": STUCK, "limit": 1000})
    except (httpx.HTTPError, ValueError):
        return
    if stuck and marks["first_stuck"] is None:
        marks["first_stuck"] = now
        marks["first_transaction"] = marks["first_transaction"] or now
    live = [t for t in stuck if datetime.fromisoformat(t["started_at"].replace("Z", "+00:00")) >= wall]
    if live and marks["first_live_stuck"] is None:
        marks["first_live_stuck"] = now


def _items(client: httpx.Client, url: str, params: dict[str, Any]) -> list[dict[str, str]]:
    response = client.get(url, params=params)
    return list(response.json()["items"]) if response.status_code == 200 else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    runs = {
        "as shipped (2 days of history)": measure(args.speed, "2d", args.timeout),
        "live only (--backfill 0)": measure(args.speed, "0", args.timeout),
    }
    table = Table(title=f"triage demo --speed {args.speed:g}: seconds from the command's start")
    table.add_column("run")
    for column in ("API answers", "first transaction", "first stuck", "first live stuck"):
        table.add_column(column, justify="right")
    for name, marks in runs.items():
        table.add_row(name, *(f"{v:.1f}" if v is not None else "—" for v in marks.values()))
    console = Console(width=120)
    console.print(table)
    shipped = runs["as shipped (2 days of history)"]["first_stuck"]
    verdict = "met" if shipped is not None and shipped <= TARGET else "missed"
    console.print(f"target: first stuck transaction within {TARGET:.0f} s — {verdict}")
    figures = {name.split(" (")[0].replace(" ", "_"): marks for name, marks in runs.items()}
    print(json.dumps({"bench": "demo_first_stuck", "speed": args.speed, "target_seconds": TARGET, **figures}))


if __name__ == "__main__":
    main()
