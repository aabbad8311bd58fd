"""Stitching as the store grows: one correlation window of new spans over stores holding more and more older ones.

Run: python bench/stitch.py [--older 1000000,5000000] [--window 10000] [--repeat 5]

For each size in `--older`, a fresh embedded store gets that many spans of `bench/correlate.py`'s procure-to-pay
transactions spread over the last 20 hours, then a window of `--window` new spans (new traces, ingested after
them). Timed, median of `--repeat` runs over the same window (every statement is idempotent):
- the whole of stitching for the window (`Stitcher.run`: keys, hops, message ids, events), and
- its span-event statement alone, as it runs (its span read bounded by when the earliest touched trace began,
  from the trace lookup table) and without that bound (every granule of the lookback tested by trace id);
  the two must produce the same rows.
A cycle's lag under load is mostly these statements: how they grow with the store is what a sustained rate
costs after days of data, which `bench/correlate.py`'s 30-second load does not reach.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.correlate import _GENERATE, CONFIG  # noqa: E402
from correlator.stitch import _TOUCHED_START, Stitcher  # noqa: E402
from triage.settings import load_settings  # noqa: E402
from triage.store import Store  # noqa: E402

# The generated transactions' spans, moved: older ones over the 20 hours before the last hour, the window's now
# and on traces of their own.
_OLDER = _GENERATE.replace(
    "now64(9) - toIntervalSecond(600) + toIntervalMillisecond(intDiv(number, 10) % 600000)",
    "now64(9) - toIntervalSecond(75600) + toIntervalMillisecond(intDiv(number, 10) % 72000000)",
)
_WINDOW = (
    _GENERATE.replace("intDiv(number, 10), 'trace'", "intDiv(number, 10) + 1000000000, 'trace'")
    .replace("intDiv(number, 10), 't2'", "intDiv(number, 10) + 1000000000, 't2'")
    .replace("toIntervalSecond(600)", "toIntervalSecond(1)")
    .replace("% 600000", "% 1000")
)
_BOUND = " AND s.Timestamp >= " + _TOUCHED_START


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(older: int, window: int, repeat: int, data_dir: Path) -> dict[str, Any]:
    # One embedded engine per process, on one directory: each size gets a database of its own there.
    database = f"bench_stitch_{older}"
    settings = load_settings(None, {**CONFIG, "store": f"chdb://{data_dir}?database={database}"}, environ={})
    store = Store(settings.store)
    store.migrate()
    store.command(_OLDER, {"spans": older})
    stored = int(store.command("SELECT count() FROM otel_traces"))  # one in ten transactions has 8 spans, not 10
    time.sleep(0.01)
    lo: datetime = store.query("SELECT now64(3)").result_rows[0][0]
    time.sleep(0.01)
    store.command(_WINDOW, {"spans": window})
    time.sleep(0.01)
    hi: datetime = store.query("SELECT now64(3)").result_rows[0][0]
    since = datetime.now(UTC) - timedelta(days=7)
    stitcher = Stitcher(store, settings)
    stats = stitcher.run(lo, hi, since)
    stitch_ms = _median_ms(lambda: stitcher.run(lo, hi, since), repeat)

    captured: list[tuple[str, dict[str, Any] | None]] = []
    command = store.command
    store.command = lambda sql, parameters=None: captured.append((sql, parameters))  # type: ignore[method-assign]
    try:
        stitcher._span_events(since)
    finally:
        store.command = command  # type: ignore[method-assign]
    (bounded, params), *_ = captured
    if _BOUND not in bounded:
        raise SystemExit("the span-event statement no longer carries the touched-start bound: update this bench")
    unbounded = bounded.replace(_BOUND, "")

    def rows(sql: str) -> list[tuple[Any, ...]]:
        select = sql.split("SELECT", 1)[1]
        return sorted(map(tuple, store.query("SELECT" + select, params).result_rows))

    same = rows(bounded) == rows(unbounded)
    if not same:
        raise SystemExit(f"with {older:,} older spans the bounded statement's rows differ from the unbounded one's")
    result = {
        "older_spans": stored,
        "window_spans": int(store.command("SELECT count() FROM otel_traces")) - stored,
        "touched_traces": stats.touched_traces,
        "stitch_ms": stitch_ms,
        "events_bounded_ms": _median_ms(lambda: command(bounded, params), repeat),
        "events_unbounded_ms": _median_ms(lambda: command(unbounded, params), repeat),
        "same_rows": same,
    }
    store.command(f"DROP DATABASE {database} SYNC")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--older",
        default="1000000,5000000",
        help="comma-separated sizes of the older data, in generated spans "
        "(78%% are kept: every tenth transaction lacks 2 of its 10)",
    )
    parser.add_argument("--window", type=int, default=10_000, help="new spans in the window (10 per trace)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        sizes = [int(x) for x in args.older.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--older takes comma-separated span counts such as 1000000,5000000 (given {args.older!r})")
    work = Path(tempfile.mkdtemp(prefix="triage-bench-stitch-"))
    try:
        results = [measure(older, args.window, args.repeat, work) for older in sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(
        title=f"stitching one window as the store grows, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}"
    )
    for column in ("older spans", "window spans / traces", "stitching", "event statement", "unbounded"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r['older_spans']:,}",
            f"{r['window_spans']:,} / {r['touched_traces']:,}",
            f"{r['stitch_ms']:.0f} ms",
            f"{r['events_bounded_ms']:.0f} ms",
            f"{r['events_unbounded_ms']:.0f} ms",
        )
    Console().print(table)
    print(json.dumps({"bench": "stitch", "window": args.window, "repeat": args.repeat, "results": results}))


if __name__ == "__main__":
    main()
