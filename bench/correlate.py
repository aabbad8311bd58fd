"""Correlation speed: a cycle over 1M spans / 100k transactions, then lag and detection under load.

Run: python bench/correlate.py [--transactions 100000] [--rate 5000] [--seconds 30] [--shards N]
     [--interval 0.25] [--settle 0.25]

(1) Throughput: 100k procure-to-pay transactions of 10 spans each (1M spans: requisition,
    approval, PO sent, and 7 internal spans without the key, so stitching by trace is needed)
    are generated inside ClickHouse into a fresh embedded store; one correlator cycle then
    stitches and evaluates them all. Prints spans/s, events/s and transactions/s.
(2) Lag and detection: `triage serve` runs as its own process with the correlator every `--interval`
    (default 0.25 s) and `--settle` (0.25 s);
    a load process sends `--rate` spans/s of new transactions over OTLP/HTTP for `--seconds`.
    Lag = first span sent → transaction visible in the API, p50/p95 over sampled transactions.
    One in ten transactions is never approved (SLA 10 s): detection = SLA breach → API says
    stalled, p50/p95.
(3) With --shards N: the same cycle split over N correlator shards, each shard's cycle timed alone on
    the same data (what one shard worker does on a machine of its own); the states must equal (1)'s.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.server import running_server  # noqa: E402
from correlator import Correlator  # noqa: E402
from tests.workflows import ST_MARYS_ICU, budget_approval, po_sent, procure_to_pay  # noqa: E402
from triage.settings import Settings, Shard, load_settings  # noqa: E402
from triage.store import Store  # noqa: E402

SLA_SECONDS = 10
CONFIG: dict[str, Any] = {
    "facilities": [ST_MARYS_ICU],
    "workflows": [
        procure_to_pay(
            budget_approval({"normal": f"{SLA_SECONDS}s"}),
            po_sent({"span_name": "send PO", "kind": "producer"}, sla="1h"),
        )
    ],
    "correlation": {"interval": 1, "settle": 0.5},
}

# 10 spans per transaction n: span 0 requisition (keyed), 1 approve, 2 send PO, 3-9 internal; 1 in 10 unapproved.
_GENERATE = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, SpanAttributes,
                         Duration, StatusCode)
SELECT now64(9) - toIntervalSecond(600) + toIntervalMillisecond(intDiv(number, 10) % 600000) AS Timestamp,
       lower(hex(cityHash64(intDiv(number, 10), 'trace'))) || lower(hex(cityHash64(intDiv(number, 10), 't2'))),
       lower(hex(cityHash64(number, 'span'))),
       if(number % 10 = 0, '', lower(hex(cityHash64(intDiv(number, 10) * 10, 'span')))),
       multiIf(number % 10 = 0, 'POST /requisitions', number % 10 = 1, 'approve', number % 10 = 2, 'send PO',
               concat('internal ', toString(number % 10))),
       multiIf(number % 10 = 0, 'Server', number % 10 = 2, 'Producer', 'Internal'),
       multiIf(number % 10 = 1, 'approval-saas', 'erp-procurement'),
       if(number % 10 = 0, map('erp.po_number', toString(4500000000 + intDiv(number, 10)), 'facility.id', 'STM-ICU',
                               'erp.amount', toString(1000 + intDiv(number, 10) % 250000)),
          map('http.route', '/internal')),
       1000000, 'Unset'
FROM numbers({spans:UInt64})
WHERE NOT (intDiv(number, 10) % 10 = 9 AND number % 10 IN (1, 2))
"""


def _generated(transactions: int, data_dir: Path, database: str) -> tuple[Settings, Store, int]:
    """A fresh database holding the generated transactions' spans, settled for a cycle; and their count."""
    settings = load_settings(None, {**CONFIG, "store": f"chdb://{data_dir}?database={database}"}, environ={})
    store = Store(settings.store)
    store.migrate()
    store.command(_GENERATE, {"spans": transactions * 10})
    spans = int(store.command("SELECT count() FROM otel_traces"))
    time.sleep(settings.correlation.settle + 0.2)
    return settings, store, spans


def _states(store: Store) -> dict[str, int]:
    rows = store.query("SELECT State, count() FROM business_transactions FINAL GROUP BY State").result_rows
    return {str(state): int(count) for state, count in rows}


def throughput(transactions: int, data_dir: Path) -> dict[str, Any]:
    settings, store, spans = _generated(transactions, data_dir, "bench_corr")
    correlator = Correlator(store, settings)
    started = time.perf_counter()
    result = correlator.run_once()
    seconds = time.perf_counter() - started
    states = _states(store)
    return {
        "peak_rss_mb": _peak_rss_mb(),
        "spans": spans,
        "seconds": seconds,
        "spans_per_s": spans / seconds,
        "events_per_s": result.events / seconds,
        "transactions_per_s": result.evaluated / seconds,
        "transactions": result.evaluated,
        "completed": states.get("completed", 0),
        "in_progress": states.get("in_progress", 0),
        "states": states,
    }


def _peak_rss_mb() -> float:
    """This process's peak resident set so far (the embedded ClickHouse engine included), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sharded(transactions: int, shards: int, data_dir: Path) -> dict[str, Any]:
    """The same cycle split over `shards` correlator shards: each shard's cycle alone (what one shard worker
    does on its own machine), one after another on the same generated data; and that they agree with one."""
    settings, store, spans = _generated(transactions, data_dir, "bench_shards")
    seconds = []
    for i in range(1, shards + 1):
        correlator = Correlator(store, settings, Shard(index=i, count=shards))
        started = time.perf_counter()
        correlator.run_once()
        seconds.append(time.perf_counter() - started)
    states = _states(store)
    slowest = max(seconds)
    return {
        "shards": shards,
        "shard_seconds": [round(x, 2) for x in seconds],
        "per_shard_spans_per_s": spans / slowest,  # of the whole stream, by the slowest shard
        "shard_states": states,
    }


def _request(first: int, count: int, now_ns: int) -> tuple[bytes, list[tuple[str, bool]]]:
    """`count` transactions of 5 spans each; every tenth is never approved."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "erp-procurement"
    spans = rs.scope_spans.add().spans
    keys = []
    for n in range(first, first + count):
        key = str(5500000000 + n)
        stuck = n % 10 == 9
        keys.append((key, stuck))
        trace = os.urandom(16)
        names = ["POST /requisitions", "internal a", "internal b"] + ([] if stuck else ["approve", "send PO"])
        for i, name in enumerate(names):
            span = spans.add()
            span.trace_id, span.span_id, span.name = trace, os.urandom(8), name
            span.start_time_unix_nano = now_ns + i * 1000
            span.end_time_unix_nano = now_ns + i * 1000 + 500
            span.kind = {"POST /requisitions": 2, "send PO": 4}.get(name, 1)
            if i == 0:
                span.attributes.add(key="erp.po_number").value.string_value = key
            if name == "approve":  # the approval-saas span, in its own resource would be more realistic
                span.attributes.add(key="peer.service").value.string_value = "approval-saas"
    return req.SerializeToString(), keys


def _load(url: str, rate: int, seconds: float) -> None:
    """Send `rate` spans/s (in 10 requests/s) of new transactions for `seconds`."""
    per_request = max(1, rate // 10 // 5)
    n = 0
    with httpx.Client(timeout=30) as client:
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            body, _ = _request(n, per_request, time.time_ns())
            r = client.post(url, content=body, headers={"Content-Type": "application/x-protobuf"})
            r.raise_for_status()
            n += per_request
            tick += 1
            time.sleep(max(0.0, start + tick * 0.1 - time.monotonic()))


def under_load(
    rate: int, seconds: float, data_dir: Path, config_file: Path, interval: float, settle: float
) -> dict[str, float]:
    """Lag and detection latency against `triage serve` with its background correlator.

    Both are measured by the server itself, exactly as defined: per span, ingest → its
    transaction's state written (triage_correlator_span_lag_seconds); per stuck transaction,
    due time → judged stalled (triage_correlator_detection_seconds).
    """
    # The approve span sits in the erp resource here; make the step match it by name alone.
    conf = json.loads(json.dumps(CONFIG))
    conf["correlation"].update(interval=interval, settle=settle)
    conf["workflows"][0]["steps"][1]["match"] = {"span_name": "approve"}
    conf["workflows"][0]["steps"][2]["match"] = {"span_name": "send PO"}
    config_file.write_text(yaml.safe_dump(conf))
    with running_server(data_dir, config_file) as server:
        loader = multiprocessing.get_context("spawn").Process(
            target=_load, args=(f"{server.otlp_http}/v1/traces", rate, seconds)
        )
        loader.start()
        loader.join(seconds + 60)
        time.sleep(SLA_SECONDS + 5)  # let the last never-approved transactions fall due and be judged
        text = httpx.get(f"{server.api}/metrics", timeout=10).text
    lag = _histogram(text, "triage_correlator_span_lag_seconds")
    detect = _histogram(text, "triage_correlator_detection_seconds")
    return {
        "cycle_mean_s": _mean(text, "triage_correlator_cycle_seconds"),
        "lag_p50": _quantile(lag, 0.5),
        "lag_p95": _quantile(lag, 0.95),
        "lag_samples": lag[-1][1] if lag else 0,
        "detect_p50": _quantile(detect, 0.5),
        "detect_p95": _quantile(detect, 0.95),
        "detect_samples": detect[-1][1] if detect else 0,
    }


def _histogram(text: str, name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of a histogram in Prometheus text."""
    buckets = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound), float(line.split()[-1])))
    return sorted(buckets)


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Linear interpolation inside the bucket holding the quantile, as Prometheus' histogram_quantile."""
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-9)
        lower_bound, lower_count = bound, count
    return lower_bound


def _mean(text: str, name: str) -> float:
    values = {}
    for line in text.splitlines():
        if line.startswith((f"{name}_sum", f"{name}_count")):
            key, value = line.split()
            values[key] = float(value)
    count = values.get(f"{name}_count", 0.0)
    return values.get(f"{name}_sum", 0.0) / count if count else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=5000, help="spans/s sent during the load phase")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--shards", type=int, default=0, help="also time the cycle split over this many correlator shards (>= 2)"
    )
    parser.add_argument(
        "--interval", type=float, default=0.25, help="correlation.interval of the server under load (seconds)"
    )
    parser.add_argument("--settle", type=float, default=0.25, help="correlation.settle of the server under load")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="triage-bench-corr-"))
    try:
        t = throughput(args.transactions, work / "throughput")
        split = sharded(args.transactions, args.shards, work / "throughput") if args.shards > 1 else {}
        load = under_load(args.rate, args.seconds, work / "load", work / "config.yaml", args.interval, args.settle)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if split and split["shard_states"] != t["states"]:
        raise SystemExit(f"the shards' verdicts differ from one correlator's: {split['shard_states']} vs {t['states']}")
    table = Table(title=f"correlation, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row(
        f"one cycle over {t['spans']:,.0f} spans / {t['transactions']:,.0f} transactions", f"{t['seconds']:.1f} s", ""
    )
    table.add_row("spans correlated per second", f"{t['spans_per_s']:,.0f}", ">= 1,000,000")
    table.add_row("peak RSS of the cycle's process (embedded store included)", f"{t['peak_rss_mb']:,.0f} MiB", "")
    if split:
        table.add_row(
            f"split over {split['shards']} shards: each shard's cycle",
            " / ".join(f"{x:.1f}" for x in split["shard_seconds"]) + " s",
            "",
        )
        table.add_row(
            "spans of the stream per second, shards in parallel (slowest shard)",
            f"{split['per_shard_spans_per_s']:,.0f}",
            "",
        )
    table.add_row("business events per second", f"{t['events_per_s']:,.0f}", "")
    table.add_row("transactions evaluated per second", f"{t['transactions_per_s']:,.0f}", "")
    table.add_row(
        f"lag p50 / p95 at {args.rate} spans/s, interval {args.interval} s, settle {args.settle} s"
        f" ({load['lag_samples']:,.0f} spans)",
        f"{load['lag_p50']:.2f} / {load['lag_p95']:.2f} s",
        "p95 <= 1 s",
    )
    table.add_row(
        f"detection after SLA breach p50 / p95 ({load['detect_samples']:,.0f} transactions)",
        f"{load['detect_p50']:.2f} / {load['detect_p95']:.2f} s",
        "p95 <= 1 s",
    )
    Console().print(table)
    print(
        json.dumps(
            {
                "bench": "correlate",
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in {**t, **split, **load}.items()},
                "rate": args.rate,
                "interval": args.interval,
                "settle": args.settle,
            }
        )
    )


if __name__ == "__main__":
    main()
