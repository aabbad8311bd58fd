"""Storage per million spans, and business tables per 100k transactions, as ClickHouse stores them.

Run: python bench/storage.py [--transactions 100000]

Generates (INSERT ... SELECT from numbers(), in ClickHouse) up to 10 spans per procure-to-pay
transaction into a fresh embedded store — 980k spans for the default 100k transactions, one in ten
never approved — shaped like an instrumented ERP estate's: 15 services with 9 resource attributes
each (service, version, host, pod, SDK, ...), an HTTP server span with the PO number, facility and
amount, the approval in approval-saas, a producer span with a message id, database and HTTP client
spans with statements and URLs, internal spans; random 128/64-bit ids, 1 span in 50 an error, 1 in
20 with an exception event, 1 in 10 with a link. One correlator cycle then writes the business tables from them.
Every table is merged (OPTIMIZE FINAL) before it is measured, so the figures are those of settled
parts: compressed bytes on disk (columns, marks, primary and skip indexes) and uncompressed bytes,
from system.parts and system.columns. Prints tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from correlator import Correlator  # noqa: E402
from tests.workflows import FACILITIES, SENT_TO_ERP_OUT, budget_approval, po_sent, procure_to_pay  # noqa: E402
from triage.settings import load_settings  # noqa: E402
from triage.store import Store  # noqa: E402

CONFIG: dict[str, Any] = {
    "facilities": FACILITIES,
    "workflows": [procure_to_pay(budget_approval(), po_sent(SENT_TO_ERP_OUT, sla="2h"))],
}
SERVICES = [
    "erp-procurement",
    "approval-saas",
    "budget-service",
    "mirth",
    "supplier-portal",
    "inventory-api",
    "edi-gateway",
    "vendor-master",
    "catalog",
    "ap-automation",
    "invoice-ocr",
    "payments",
    "hr-core",
    "workday-sync",
    "notifications",
]

_STACK = (
    "Traceback (most recent call last):\n"
    '  File "procurement/requisitions.py", line 118, in approve\n'
    "    cur.execute(UPDATE_STATE, (state, rid))\n"
    "psycopg.errors.SerializationFailure: could not serialize access due to concurrent update"
)

# Span n of transaction t = n / 10 (one trace per transaction), role r = n % 10:
# 0 POST /requisitions (keyed), 1 approve (approval-saas), 2 send PO (producer), 3-4 SQL, 5-6 HTTP client,
# 7 mirth transform, 8-9 internal. One transaction in ten is never approved (no spans 1 and 2).
_GENERATE = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
                         ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
                         StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
                         `Links.SpanId`, `Links.TraceState`, `Links.Attributes`)
SELECT ts, trace, span, parent, '', name, kind, service,
       map('service.name', service, 'service.namespace', 'erp-integration',
           'service.version', concat('3.', toString(cityHash64(service) % 9), '.', toString(cityHash64(service) % 17)),
           'deployment.environment.name', 'production',
           'host.name', concat(service, '-', lower(hex(cityHash64(service, 'pod') % 1048576)), '-',
                               lower(hex(cityHash64(service, t % 3) % 65536))),
           'k8s.namespace.name', 'integration',
           'telemetry.sdk.name', 'opentelemetry',
           'telemetry.sdk.language', if(r IN (1, 7), 'java', 'python'),
           'telemetry.sdk.version', '1.38.0'),
       multiIf(r = 0, 'opentelemetry.instrumentation.fastapi', r IN (3, 4), 'opentelemetry.instrumentation.psycopg',
               r IN (5, 6), 'opentelemetry.instrumentation.httpx', r = 2, 'opentelemetry.instrumentation.pika',
               r IN (1, 7), 'io.opentelemetry.spring-webmvc-6.0', 'erp.procurement'),
       if(r IN (1, 7), '2.21.0', '0.59b0'),
       multiIf(
         r = 0, map('http.request.method', 'POST', 'http.route', '/requisitions', 'url.path', '/requisitions',
                    'url.scheme', 'https', 'server.address', 'erp.internal', 'http.response.status_code',
                    if(err, '500', '201'), 'user_agent.original', 'ERP-Client/7.4 (SAP NetWeaver)',
                    'client.address', concat('10.20.', toString(t % 250), '.', toString(cityHash64(t) % 250)),
                    'erp.po_number', po, 'facility.id', facility, 'erp.amount', amount,
                    'erp.cost_center', concat('CC-', toString(1000 + t % 350))),
         r = 1, map('http.request.method', 'POST', 'http.route', '/api/v2/approvals/{id}/decision',
                    'http.response.status_code', if(err, '503', '200'), 'po.number', po,
                    'approval.decision', 'approved', 'enduser.id', concat('u', toString(cityHash64(t, 'user') % 5000))),
         r = 2, map('messaging.system', 'rabbitmq', 'messaging.operation.type', 'publish',
                    'messaging.destination.name', 'erp.po.out', 'messaging.rabbitmq.destination.routing_key', 'po.sent',
                    'messaging.message.id', generateUUIDv4(n), 'messaging.message.body.size',
                    toString(800 + cityHash64(n) % 4000), 'erp.po_number', po),
         r IN (3, 4), map('db.system.name', 'postgresql', 'db.namespace', 'erp',
                          'db.query.text', if(r = 3, 'SELECT id, sku, qty, unit_price FROM po_lines WHERE po_id = $1',
                                               'UPDATE requisitions SET state = $1, updated_at = now() WHERE id = $2'),
                          'db.operation.name', if(r = 3, 'SELECT', 'UPDATE'), 'server.address', 'erp-db.internal',
                          'server.port', '5432'),
         r IN (5, 6), map('http.request.method', 'GET', 'url.full',
                          concat(if(r = 5, 'http://budget-service:8080/budgets/CC-', 'http://vendor-master:8080/vendors/V'),
                                 toString(1000 + t % 350)),
                          'server.address', if(r = 5, 'budget-service', 'vendor-master'), 'server.port', '8080',
                          'http.response.status_code', if(err, '502', '200'), 'network.protocol.version', '1.1'),
         r = 7, map('mirth.channel', 'PO-to-EDI-850', 'mirth.connector', 'destination 1', 'edi.transaction_set', '850',
                    'message.size', toString(2000 + cityHash64(n) % 9000)),
         map('code.function.name', if(r = 8, 'validate_requisition', 'price_lines'), 'code.file.path',
             if(r = 8, 'procurement/requisitions.py', 'procurement/pricing.py'), 'thread.name', 'worker-3')),
       5000 + cityHash64(n, 'd') % if(r IN (1, 7), 400000000, 40000000),
       if(err, 'Error', 'Unset'),
       if(err, multiIf(r = 1, 'upstream approval-saas 503', r IN (5, 6), 'connection reset by peer',
                       'ValidationError: quantity must be positive'), ''),
       if(n % 20 = 7, [ts + toIntervalMillisecond(3)], []),
       if(n % 20 = 7, ['exception'], []),
       if(n % 20 = 7, [map('exception.type', 'psycopg.errors.SerializationFailure', 'exception.message',
                           'could not serialize access due to concurrent update',
                           'exception.stacktrace', {stack:String})],
          []),
       if(n % 10 = 2 AND t % 10 = 0,
          [lower(hex(cityHash64(t + 1, 'trace'))) || lower(hex(cityHash64(t + 1, 't2')))], []),
       if(n % 10 = 2 AND t % 10 = 0, [lower(hex(cityHash64(t * 10 + 11, 'span')))], []),
       if(n % 10 = 2 AND t % 10 = 0, [''], []),
       if(n % 10 = 2 AND t % 10 = 0, [map('messaging.operation.type', 'receive')], [])
FROM (
    SELECT number AS n, intDiv(number, 10) AS t, number % 10 AS r,
           {start:DateTime64(9)} + toIntervalMillisecond(intDiv(t * {seconds:UInt64} * 1000, {transactions:UInt64}))
               + toIntervalMillisecond(r * 40 + cityHash64(n, 'jitter') % 30) AS ts,
           lower(hex(cityHash64(t, 'trace'))) || lower(hex(cityHash64(t, 't2'))) AS trace,
           lower(hex(cityHash64(number, 'span'))) AS span,
           if(r = 0, '', lower(hex(cityHash64(t * 10 + if(r IN (3, 4, 5, 6, 8, 9), 0, r - 1), 'span')))) AS parent,
           multiIf(r = 0, 'POST /requisitions', r = 1, 'approve', r = 2, 'send PO', r = 3, 'SELECT erp.po_lines',
                   r = 4, 'UPDATE erp.requisitions', r = 5, 'GET', r = 6, 'GET', r = 7, 'transform PO-to-EDI-850',
                   r = 8, 'validate requisition', 'price lines') AS name,
           multiIf(r IN (0, 1), 'Server', r = 2, 'Producer', r IN (3, 4, 5, 6), 'Client', 'Internal') AS kind,
           multiIf(r = 1, 'approval-saas', r = 7, 'mirth', r IN (0, 2, 3, 4, 8, 9), 'erp-procurement',
                   {services:Array(String)}[3 + t % (length({services:Array(String)}) - 2)]) AS service,
           toString(4500000000 + t) AS po,
           if(t % 4 = 0, 'STM-ICU', 'CLN-04') AS facility,
           toString(round(100 + cityHash64(t, 'value') % 25000000 / 100, 2)) AS amount,
           cityHash64(n, 'err') % 50 = 0 AS err
    FROM numbers({spans:UInt64})
)
WHERE NOT (t % 10 = 9 AND r IN (1, 2))
"""

# Tables whose size does not grow with the data (bookkeeping): left out of the per-100k figures.
_FIXED = ("triage_migrations", "correlator_state", "triage_leases")
_PARTS = """
SELECT table, sum(rows), sum(bytes_on_disk), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count()
FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table
"""
_COLUMNS = """
SELECT name, sum(data_compressed_bytes), sum(data_uncompressed_bytes)
FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces'
GROUP BY name HAVING sum(data_uncompressed_bytes) > 0 ORDER BY sum(data_compressed_bytes) DESC
"""


def generate(store: Store, transactions: int) -> float:
    """Insert the spans of `transactions` transactions, spread over the last hour; seconds taken."""
    started = time.perf_counter()
    store.command(
        _GENERATE,
        {
            "spans": transactions * 10,
            "transactions": transactions,
            "seconds": 3600,
            "start": datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3900),
            "services": SERVICES,
            "stack": _STACK,
        },
    )
    return time.perf_counter() - started


def measure(store: Store) -> dict[str, dict[str, float]]:
    """Rows, parts and bytes of every table that holds rows, after merging each to one part per partition."""
    tables = [row[0] for row in store.query(_PARTS).result_rows]
    for table in tables:
        store.command(f"OPTIMIZE TABLE `{table}` FINAL")
    return {
        table: {"rows": rows, "disk": disk, "compressed": comp, "uncompressed": uncomp, "parts": parts}
        for table, rows, disk, comp, uncomp, parts in store.query(_PARTS).result_rows
        if rows
    }


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="triage-bench-storage-"))
    try:
        settings = load_settings(None, {**CONFIG, "store": f"chdb://{work}?database=bench_storage"}, environ={})
        store = Store(settings.store)
        store.migrate()
        generate_s = generate(store, args.transactions)
        time.sleep(settings.correlation.settle + 0.2)
        started = time.perf_counter()
        result = Correlator(store, settings).run_once()
        correlate_s = time.perf_counter() - started
        tables = measure(store)
        columns = store.query(_COLUMNS).result_rows
        states = dict(store.query("SELECT State, count() FROM business_transactions FINAL GROUP BY State").result_rows)
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    spans = tables["otel_traces"]["rows"]
    per_span = {t: v for t, v in tables.items() if t.startswith("otel_traces")}
    business = {t: v for t, v in tables.items() if t not in per_span and t not in _FIXED}
    span_scale, tx_scale = 1e6 / spans, 1e5 / max(result.evaluated, 1)

    title = f"storage: {spans:,.0f} spans, {result.evaluated:,.0f} transactions, {datetime.now(UTC):%Y-%m-%d}"
    table = Table(title=title)
    for name in ("table", "rows", "parts", "on disk MiB", "compressed MiB", "uncompressed MiB", "ratio", "per"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for label, group, scale in (("1M spans", per_span, span_scale), ("100k transactions", business, tx_scale)):
        for name, v in group.items():
            table.add_row(
                name,
                f"{v['rows']:,.0f}",
                f"{v['parts']:.0f}",
                _mib(v["disk"] * scale),
                _mib(v["compressed"] * scale),
                _mib(v["uncompressed"] * scale),
                f"{v['uncompressed'] / max(v['compressed'], 1):.1f}",
                label,
            )
    console = Console(width=120)
    console.print(table)
    top = Table(title="otel_traces by column (largest compressed first)")
    for name in ("column", "compressed MiB", "uncompressed MiB", "ratio"):
        top.add_column(name, justify="left" if name == "column" else "right")
    for name, comp, uncomp in columns[:12]:
        top.add_row(name, _mib(comp), _mib(uncomp), f"{uncomp / max(comp, 1):.1f}")
    console.print(top)

    def total(group: dict[str, dict[str, float]], key: str, scale: float) -> int:
        return round(sum(v[key] for v in group.values()) * scale)

    figures = {
        "bench": "storage",
        "cores": os.cpu_count(),
        "spans": spans,
        "transactions": result.evaluated,
        "states": states,
        "generate_s": round(generate_s, 1),
        "correlate_s": round(correlate_s, 1),
        "spans_disk_bytes_per_million": total(per_span, "disk", span_scale),
        "spans_compressed_bytes_per_million": total(per_span, "compressed", span_scale),
        "spans_uncompressed_bytes_per_million": total(per_span, "uncompressed", span_scale),
        "business_disk_bytes_per_100k_transactions": total(business, "disk", tx_scale),
        "business_compressed_bytes_per_100k_transactions": total(business, "compressed", tx_scale),
        "business_uncompressed_bytes_per_100k_transactions": total(business, "uncompressed", tx_scale),
        "tables": {t: {k: round(x) for k, x in v.items()} for t, v in tables.items()},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
