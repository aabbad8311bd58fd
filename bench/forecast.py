"""Breach forecasts' history read: what the correlator pays every `correlation.forecast.refresh` (a minute).

Run: python bench/forecast.py [--transactions 100000,1000000] [--runs 5] [--data DIR]

For each size, a fresh embedded store (or DIR's, generated once per size) holds that many business
transactions over 30 days, as `bench/dashboards.py` generates them inside ClickHouse (five workflows of
four to six steps, 80% completed, 12% in progress, the rest stuck; a transaction's steps an hour or so
apart). The forecaster's read (`Forecaster.refresh`: the waits' quantiles per workflow step, criticality
and facility, and the steps' gaps for stoppages) is timed `--runs` times after a warm-up, each of its two
statements on its own too, and the waits it learnt are counted, so that a read that found nothing is not
a fast one. Prints a table and one JSON line; peak RSS is the process's, the embedded ClickHouse included.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.dashboards import _prepare  # noqa: E402
from correlator.forecast import Forecaster  # noqa: E402


def measure(transactions: int, data: Path, runs: int, console: Console) -> dict[str, Any]:
    store, settings, rows = _prepare(data, transactions, 0, console)
    now = datetime.now(UTC)
    conf = settings.correlation.forecast
    since = now - timedelta(seconds=conf.history)
    forecaster = Forecaster(store, settings)
    (waits_sql, waits_params), (gaps_sql, gaps_params) = forecaster.statements(now)

    def whole() -> None:
        forecaster.refresh(now, force=True)

    def waits() -> None:
        store.query(waits_sql, waits_params)

    def gaps() -> None:
        store.query(gaps_sql, gaps_params)

    timed = {}
    for name, fn in (("refresh (both)", whole), ("waits quantiles", waits), ("step gaps", gaps)):
        fn()  # warm-up
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - started)
        timed[name] = {"p50": statistics.median(seconds), "max": max(seconds)}
    learnt = len(forecaster._waits)
    if not learnt or not forecaster._flows:
        raise SystemExit(f"the forecaster learnt nothing from {transactions:,} transactions: the bench is broken")
    events = int(
        store.command("SELECT count() FROM business_events WHERE At >= {since:DateTime64(9)}", {"since": since})
    )
    return {
        "transactions": rows["business_transactions"],
        "history_days": conf.history / 86400,
        "events_in_history": events,
        "bases": learnt,
        "steps": len(forecaster._flows),
        "seconds": timed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, help="keep the generated stores here (default: a temporary dir)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.transactions.split(",") if x.strip()]
    if not sizes or min(sizes) < 1000:
        parser.error("--transactions: sizes of at least 1000, e.g. 100000,1000000")
    console = Console()
    temporary = args.data is None
    data = Path(tempfile.mkdtemp(prefix="triage-bench-forecast-")) if temporary else args.data
    try:
        results = [measure(n, data, args.runs, console) for n in sizes]
    finally:
        if temporary:
            shutil.rmtree(data, ignore_errors=True)
    days = results[0]["history_days"]
    table = Table(title=f"forecast history read ({days:g} days of history), seconds p50 / max")
    table.add_column("transactions")
    table.add_column("events in history")
    for name in results[0]["seconds"]:
        table.add_column(name)
    table.add_column("bases / steps")
    for r in results:
        cells = [f"{r['seconds'][k]['p50']:.2f} / {r['seconds'][k]['max']:.2f}" for k in r["seconds"]]
        table.add_row(f"{r['transactions']:,}", f"{r['events_in_history']:,}", *cells, f"{r['bases']} / {r['steps']}")
    console.print(table)
    console.print(f"peak RSS {max(r['peak_rss_mb'] for r in results):,.0f} MiB")
    print(json.dumps({"forecast_read": results}))


if __name__ == "__main__":
    main()
