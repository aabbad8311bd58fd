"""Dashboard query latency on a large store: p50/p95 of each page's data load.

Run: python bench/dashboards.py [--transactions 1000000] [--spans 10000000] [--baseline N] [--runs 15] [--data DIR]
                                [--generate-only]

Generates (INSERT ... SELECT from numbers(), in ClickHouse) an embedded store with N business
transactions over 30 days (a tenth of them re-versioned, so FINAL has work to do), their step events,
causes and trace keys, M spans and M/10 logs over 7 days, and 20 queues sampled every 15 s for 7 days;
then times every page's data load (the functions the pages' callbacks call), after the snapshots of
migrations 0017 and 0020 have refreshed once (they go on refreshing on their timers while the pages are timed).
`--baseline N` also times a store of N transactions and N/N-th of the spans (one database each in the
same data directory) and prints how each page's p95 grows from it. Prints a table, the snapshots'
refresh times, and one JSON line. `--data DIR` keeps the stores (re-used when they were generated with
the requested sizes); `--generate-only` fills them without timing (so that timing alone can hold a shared lock).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from triage import targets  # noqa: E402
from triage.settings import Settings, load_settings  # noqa: E402
from triage.store import Store  # noqa: E402

WORKFLOWS: dict[str, list[str]] = {
    "procure_to_pay": ["requisition", "budget_approval", "po_created", "po_sent"],
    "invoice_matching": ["invoice_received", "matched", "approved", "posted"],
    "supplier_onboarding": ["application", "vetting", "approval", "activated"],
    "inventory_replenishment": ["reorder_point", "po_created", "shipped", "received"],
    "workforce_sync": ["hr_change", "transformed", "delivered"],
}
SERVICES = [
    "erp-procurement",
    "approval-saas",
    "supplier-portal",
    "mirth",
    "inventory-api",
    "workday-sync",
    "invoice-ocr",
    "edi-gateway",
    "budget-service",
    "ap-automation",
    "hr-core",
    "payments",
    "vendor-master",
    "catalog",
    "notifications",
]
QUEUES = [f"wf.{name}" for name in ("approvals", "invoices", "po.out", "supplier.events", "hr.changes")] + [
    f"erp.q{i:02d}" for i in range(15)
]
FACILITIES = 40
DAY = 86_400


def bench_config() -> dict[str, Any]:
    """Configuration that describes the generated store: facilities, workflows with SLAs, queues."""
    facilities = [
        {"id": f"FAC-{i:02d}", "name": f"Facility {i:02d}", "criticality": _tier(i)} for i in range(FACILITIES)
    ]
    workflows = [
        {
            "name": name,
            "keys": [f"{name}.key"],
            "facility": "facility.id",
            "value": "erp.amount",
            "steps": [
                {
                    "name": step,
                    "match": {"span_name": step},
                    **({"sla": {"normal": "8h", "critical": "2h"}} if i else {}),
                }
                for i, step in enumerate(steps)
            ],
            "terminal": [steps[-1]],
        }
        for name, steps in WORKFLOWS.items()
    ]
    queues = [{"name": q, "kind": "push"} for q in QUEUES]
    return {"facilities": facilities, "workflows": workflows, "queues": queues}


def bench_settings(store: str, **overrides: Any) -> Settings:
    return load_settings(None, {"store": store, **bench_config(), **overrides}, environ={})


def _tier(i: int) -> str:
    return "critical" if i < 8 else "high" if i < 20 else "normal"


# One derivation of a generated transaction from its number n, shared by the transaction and event inserts.
_TX_BASE = """
SELECT n, wf, steps, Key, State, Facility, FacilityName, Criticality, reached, started, gap, Value,
       multiIf(State = 'stalled', if(n % 2 = 0, 'awaiting_approval', 'unknown'),
               State = 'blocked', if(n % 2 = 0, 'queue_backlog', 'dependency_error'),
               State = 'failed', 'transformation_failed', '') AS CauseKind,
       multiIf(CauseKind = 'queue_backlog', {queues:Array(String)}[1 + n % 5],
               CauseKind IN ('dependency_error', 'awaiting_approval'), {services:Array(String)}[1 + n % 4],
               CauseKind = 'transformation_failed', 'supplier-orders', CauseKind = 'unknown', steps[reached + 1],
               '') AS CauseComponent
FROM (
    SELECT number AS n,
           {workflows:Array(String)}[1 + n % length({workflows:Array(String)})] AS wf,
           {steps:Array(Array(String))}[1 + n % length({workflows:Array(String)})] AS steps,
           toString(4500000000 + n) AS Key,
           cityHash64(n, {seed:String}) % 1000 AS r,
           multiIf(r < 800, 'completed', r < 920, 'in_progress', r < 950, 'stalled', r < 980, 'blocked',
                   'failed') AS State,
           concat('FAC-', leftPad(toString(n % {facilities:UInt32}), 2, '0')) AS Facility,
           concat('Facility ', leftPad(toString(n % {facilities:UInt32}), 2, '0')) AS FacilityName,
           multiIf(n % {facilities:UInt32} < 8, 'critical', n % {facilities:UInt32} < 20, 'high', 'normal')
               AS Criticality,
           if(State = 'completed', length(steps), 1 + cityHash64(n, 'reach') % (length(steps) - 1)) AS reached,
           {now:DateTime64(9)} - toIntervalSecond(intDiv(n * {tx_seconds:UInt64}, {total:UInt64})) AS started,
           60 + cityHash64(n, 'gap') % 14400 AS gap,
           toFloat64(100 + cityHash64(n, 'value') % 250000) AS Value
    FROM numbers({offset:UInt64}, {count:UInt64})
    WHERE n % {every:UInt64} = 0
)
"""
TRANSACTIONS = f"""
INSERT INTO business_transactions (Workflow, Key, State, Facility, FacilityName, Criticality, CurrentStep, NextStep,
    StartedAt, UpdatedAt, DueAt, Value, Priority, CauseKind, CauseComponent, CauseDetail, CauseSince, Version)
SELECT wf, Key, State, Facility, FacilityName, Criticality, steps[reached],
       if(State = 'completed', '', steps[reached + 1]),
       started, started + toIntervalSecond(gap * reached),
       if(State = 'completed', NULL, started + toIntervalSecond(gap * (reached + 1))), Value,
       if(State = 'completed', 0, multiIf(Criticality = 'critical', 3, Criticality = 'high', 2, 1)
          * (1 + log10(1 + Value / 1000)) * (1 + if(State IN ('stalled', 'blocked', 'failed'), 2, 0))),
       CauseKind, CauseComponent, if(CauseKind = '', '', concat(CauseKind, ' on ', CauseComponent)),
       if(CauseKind = '', NULL, started + toIntervalSecond(gap * reached)), {{version:UInt64}}
FROM ({_TX_BASE})
"""
EVENTS = f"""
INSERT INTO business_events (Workflow, Key, EventId, Step, At, Source, Service, TraceId, SpanId, SpanKind, Status,
    Failure, Detail, Peer, Destination, MessageId, Facility, Value)
SELECT wf, Key, concat(toString(n), '/', toString(i)), steps[i], started + toIntervalSecond(gap * (i - 1)), 'span',
       {{services:Array(String)}}[1 + (n + i) % length({{services:Array(String)}})],
       lower(hex(MD5(toString(2 * n + (i % 2))))), lower(hex(cityHash64(n, i))), 'Server', 'ok', 0, '', '', '', '',
       Facility, Value
FROM ({_TX_BASE})
ARRAY JOIN range(1, toUInt64(reached) + 1) AS i
"""
CAUSES = f"""
INSERT INTO transaction_causes (Workflow, Key, Kind, Component, Detail, Since, Evidence, DetectedAt, Active, Version)
SELECT wf, Key, CauseKind, CauseComponent, concat(CauseKind, ' on ', CauseComponent),
       started + toIntervalSecond(gap * reached),
       concat('{{"trace_ids": ["', lower(hex(MD5(toString(2 * n)))), '"], "queue": "', CauseComponent, '"}}'),
       least(started + toIntervalSecond(gap * (reached + 1)), {{now:DateTime64(9)}}), 1, {{version:UInt64}}
FROM ({_TX_BASE})
WHERE CauseKind != ''
"""
TRACE_KEYS = f"""
INSERT INTO trace_keys (TraceId, Workflow, Key, Via, FirstSeen)
SELECT lower(hex(MD5(toString(2 * n + j)))), wf, Key, 'attribute', started
FROM ({_TX_BASE})
ARRAY JOIN [0, 1] AS j
"""
SPANS = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ResourceAttributes,
    SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT ts, lower(hex(MD5(toString(intDiv(n, 5))))), lower(hex(cityHash64(n))), '', name, kind, svc,
       map('service.name', svc),
       map('erp.po_number', toString(4500000000 + intDiv(n, 10)), 'http.response.status_code', if(err, '503', '200'),
           'peer.service', if(kind = 'Client', peer, '')),
       toUInt64(1000000 * (1 + cityHash64(n, 'd') % 2000)), if(err, 'Error', 'Ok'),
       if(err, concat(peer, ' returned 503 Service Unavailable'), '')
FROM (
    SELECT number AS n, {services:Array(String)}[1 + cityHash64(n, 's') % length({services:Array(String)})] AS svc,
           {services:Array(String)}[1 + cityHash64(n, 'p') % 4] AS peer,
           ['Server', 'Client', 'Internal', 'Producer', 'Consumer'][1 + n % 5] AS kind,
           concat(if(kind = 'Client', 'POST ', 'GET /'), {services:Array(String)}[1 + n % 7]) AS name,
           cityHash64(n, 'e') % 1000 < if(svc = 'approval-saas', 120, 15) AS err,
           {now:DateTime64(9)} - toIntervalMillisecond(intDiv(n * {ms:UInt64}, {total:UInt64})) AS ts
    FROM numbers({offset:UInt64}, {count:UInt64})
)
"""
LOGS = """
INSERT INTO otel_logs (Timestamp, ObservedTimestamp, TraceId, SpanId, SeverityText, SeverityNumber, ServiceName, Body)
SELECT ts, ts, lower(hex(MD5(toString(2 * (n % {transactions:UInt64}))))), '', if(err, 'ERROR', 'INFO'),
       if(err, 17, 9), {services:Array(String)}[1 + n % length({services:Array(String)})],
       concat(if(err, 'mapping failed for PO ', 'processed PO '), toString(4500000000 + n % {transactions:UInt64}))
FROM (
    SELECT number AS n, cityHash64(n, 'le') % 100 < 4 AS err,
           {now:DateTime64(9)} - toIntervalMillisecond(intDiv(n * {ms:UInt64}, {total:UInt64})) AS ts
    FROM numbers({offset:UInt64}, {count:UInt64})
)
"""
QUEUE_LAG = """
INSERT INTO queue_lag (Timestamp, Queue, Source, System, Destination, ConsumerGroup, Backlog, Consumers,
    OldestAgeSeconds, RateIn, RateOut, RateSource, Error)
SELECT {now:DateTime64(3)} - toIntervalSecond(15 * intDiv(number, length({queues:Array(String)}))) AS ts,
       {queues:Array(String)}[1 + number % length({queues:Array(String)})] AS q, 'push', 'push', q, '',
       toInt64(abs(1000 * sin(number / 5000)) + cityHash64(number) % 50), 2, toFloat64(cityHash64(number, 'a') % 3600),
       10., 9.5, 'broker', ''
FROM numbers({count:UInt64})
"""


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(offset, min(size, total - offset)) for offset in range(0, total, size)]


def generate(
    store: Store, transactions: int, spans: int, now: datetime | None = None, say: Callable[[str], None] = print
) -> None:
    """Fill the (migrated) store with generated business and telemetry data."""
    now = now or datetime.now(UTC)
    base = {
        "workflows": list(WORKFLOWS),
        "steps": list(WORKFLOWS.values()),
        "services": SERVICES,
        "queues": QUEUES,
        "facilities": FACILITIES,
        "now": now,
        "tx_seconds": 30 * DAY,
        "total": max(transactions, 1),
    }
    steps: list[tuple[str, str, dict[str, Any], int]] = [
        ("business_transactions", TRANSACTIONS, {"seed": "state", "every": 1, "version": 1}, transactions),
        ("business_transactions v2", TRANSACTIONS, {"seed": "state2", "every": 10, "version": 2}, transactions),
        ("business_events", EVENTS, {"seed": "state", "every": 1}, transactions),
        ("transaction_causes", CAUSES, {"seed": "state", "every": 1, "version": 1}, transactions),
        ("trace_keys", TRACE_KEYS, {"seed": "state", "every": 1}, transactions),
    ]
    for label, sql, extra, count in steps:
        started = time.perf_counter()
        for offset, size in _chunks(count, 500_000):
            store.command(sql, {**base, **extra, "offset": offset, "count": size})
        say(f"{label}: {count:,} source rows in {time.perf_counter() - started:.1f}s")
    telemetry = {"now": now, "services": SERVICES, "ms": 7 * DAY * 1000, "transactions": max(transactions, 1)}
    for label, sql, count in (("otel_traces", SPANS, spans), ("otel_logs", LOGS, spans // 10)):
        started = time.perf_counter()
        for offset, size in _chunks(count, 1_000_000):
            store.command(sql, {**telemetry, "offset": offset, "count": size, "total": max(count, 1)})
        say(f"{label}: {count:,} rows in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    samples = len(QUEUES) * 7 * DAY // 15
    store.command(QUEUE_LAG, {"now": now, "queues": QUEUES, "count": samples})
    say(f"queue_lag: {samples:,} rows in {time.perf_counter() - started:.1f}s")


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm-up: first-touch of marks and caches is not what a user waits for twice
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(store: Store, settings: Settings, runs: int) -> dict[str, dict[str, float]]:
    """p50/p95 seconds of each page's whole data load and of the report."""
    from dashboards import data
    from dashboards.filters import Filters
    from dashboards.report import build_report

    top = data.overview(store, settings, Filters(range="30d")).stuck
    one = top[0] if top else None
    loads: dict[str, Callable[[], Any]] = {
        "overview (24h)": lambda: data.overview(store, settings, Filters()),
        "overview (30d, workflow+criticality)": lambda: data.overview(
            store, settings, Filters(range="30d", workflow="procure_to_pay", criticality="critical")
        ),
        "transaction drill-down": lambda: data.transaction_view(
            store, settings, one.workflow if one else "", one.key if one else ""
        ),
        "workflow (7d)": lambda: data.workflow_view(store, settings, Filters(range="7d", workflow="procure_to_pay")),
        "workflow (30d)": lambda: data.workflow_view(
            store, settings, Filters(range="30d", workflow="invoice_matching")
        ),
        "dependencies (24h)": lambda: data.dependencies(store, settings, Filters()),
        "alerts": lambda: data.alerts(store),
        "report data (7d)": lambda: build_report(store, settings, "7d", charts=False),
    }
    results = {}
    for name, fn in loads.items():
        times = _timed(fn, runs)
        results[name] = {"p50": statistics.median(times), "p95": _p(times, 0.95), "max": max(times)}
    return results


def _refresh_snapshots(store: Store) -> dict[str, float]:
    """Refresh every snapshot view once and wait; seconds each refresh took, as the store measured it."""
    from dashboards.queries.snapshots import VIEWS

    for view in VIEWS:
        store.command(f"SYSTEM REFRESH VIEW {view}")
        store.command(f"SYSTEM WAIT VIEW {view}")
    rows = store.query(
        "SELECT view, last_success_duration_ms FROM system.view_refreshes WHERE database = currentDatabase()"
    ).result_rows
    return {view: (ms or 0) / 1000 for view, ms in rows if view in VIEWS}


_GENERATED = "bench_generated"


def _sizes(store: Store) -> dict[str, int]:
    tables = ("business_transactions", "business_events", "otel_traces", "otel_logs", "queue_lag")
    return {t: int(store.command(f"SELECT count() FROM {t}")) for t in tables}


def _prepare(path: Path, transactions: int, spans: int, console: Console) -> tuple[Store, Settings, dict[str, int]]:
    """The store of this size (database bench_<transactions>), generated when it does not hold it yet."""
    settings = bench_settings(f"chdb://{path}?database=bench_{transactions}")
    store = Store(settings.store)
    store.migrate()
    targets.record(store, settings)  # as `triage serve` does: the report's snapshot judges cycle times by them
    # What was generated is recorded, not inferred from counts: the raw retention drops the oldest spans
    # of a store kept for a while, and a count short of the request must not generate the store again.
    store.command(
        f"CREATE TABLE IF NOT EXISTS {_GENERATED} (Transactions UInt64, Spans UInt64) ENGINE = MergeTree ORDER BY ()"
    )
    done = store.query(f"SELECT Transactions, Spans FROM {_GENERATED}").result_rows
    if done and tuple(done[0]) != (transactions, spans):
        raise SystemExit(
            f"{path} holds a store of {done[0][0]:,} transactions and {done[0][1]:,} spans: use another --data"
        )
    if not done:
        if _sizes(store)["business_transactions"]:
            raise SystemExit(f"{path} holds a partly generated store of {transactions:,} transactions: remove it")
        with console.status(f"generating the store of {transactions:,} transactions"):
            started = time.perf_counter()
            generate(store, transactions, spans, say=console.print)
            console.print(f"generated in {time.perf_counter() - started:.0f}s")
        store.command(f"INSERT INTO {_GENERATED} VALUES ({transactions}, {spans})")
    return store, settings, _sizes(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--baseline", type=int, help="also time a store of this many transactions (spans scaled)")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--data", help="keep the generated stores in this directory (re-used if filled)")
    parser.add_argument("--generate-only", action="store_true", help="fill the stores, time nothing")
    args = parser.parse_args()
    console = Console()
    path = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="triage-bench-"))
    sizes_asked = [(args.transactions, args.spans)]
    if args.baseline:
        sizes_asked.insert(0, (args.baseline, args.spans * args.baseline // max(args.transactions, 1)))
    stores = [_prepare(path, tx, spans, console) for tx, spans in sizes_asked]
    if args.generate_only:
        return
    runs: list[dict[str, Any]] = []
    for store, settings, sizes in stores:
        refresh = _refresh_snapshots(store)
        runs.append({"rows": sizes, "refresh_s": refresh, "results": measure(store, settings, args.runs)})
    big = runs[-1]
    table = Table(
        title=f"dashboard data loads, {args.runs} runs each ({', '.join(f'{k} {v:,}' for k, v in big['rows'].items())})"
    )
    columns = ["page", "p50 ms", "p95 ms", "max ms"]
    if len(runs) > 1:
        columns += [f"p95 ms at {runs[0]['rows']['business_transactions']:,} tx", "growth"]
    for column in columns:
        table.add_column(column, justify="left" if column == "page" else "right")
    for name, r in big["results"].items():
        row = [name, f"{r['p50'] * 1000:.0f}", f"{r['p95'] * 1000:.0f}", f"{r['max'] * 1000:.0f}"]
        if len(runs) > 1:
            base = runs[0]["results"][name]["p95"]
            row += [f"{base * 1000:.0f}", f"{r['p95'] / base:.1f}x" if base else "-"]
        table.add_row(*row)
    console.print(table)
    for run in runs:
        took = ", ".join(f"{v} {s:.1f}s" for v, s in run["refresh_s"].items())
        console.print(f"snapshot refresh at {run['rows']['business_transactions']:,} transactions: {took}")
    out = [
        {
            "rows": run["rows"],
            "refresh_s": {k: round(v, 2) for k, v in run["refresh_s"].items()},
            "ms": {name: {k: round(v * 1000, 1) for k, v in r.items()} for name, r in run["results"].items()},
        }
        for run in runs
    ]
    print(json.dumps({"bench": "dashboards", "runs": out}))


if __name__ == "__main__":
    main()
