"""Discovery speed: a workflow proposed from 1M spans of 100k purchase orders.

Run: python bench/discover.py [--transactions 100000]

Each purchase order (generated inside ClickHouse into a fresh embedded store, over the last six days)
has a requisition (erp-procurement, keyed by erp.po_number, with its amount and facility), an approval
in the approval SaaS hours later in a trace of its own (keyed by po.number), a capital review for
amounts of 200,000 or more, the PO sent by EDI or through the supplier portal, and six internal spans
without the key under the requisition. `discover()` is timed reading 10,000 and 100,000 transactions;
the proposal is checked (order, the conditional step, the alternatives, the human approval).
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
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

from correlator import discover  # noqa: E402
from triage.store import Store  # noqa: E402

# Transaction t = intDiv(number, 10), span s = number % 10: 0 requisition, 1 approval (its own trace), 2 the
# capital review (large POs only), 3 EDI or portal, 4-9 internal children of the requisition.
_GENERATE = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, SpanAttributes,
                         Duration, StatusCode)
SELECT start + toIntervalMillisecond(multiIf(s = 1, approval, s = 2, approval + 1800000 + t % 600000,
                                             s = 3, approval + 3600000 + t % 1200000, s * 10)) AS Timestamp,
       lower(hex(cityHash64(t, if(s IN (1, 2, 3), toString(s), 'trace')))) || lower(hex(cityHash64(t, 't2'))),
       lower(hex(cityHash64(number, 'span'))),
       if(s < 4, '', lower(hex(cityHash64(t * 10, 'span')))),
       multiIf(s = 0, 'POST /requisitions', s = 1, 'approve', s = 2, 'review capital request',
               s = 3, if(t % 3 = 0, 'send 850', 'publish PO'), concat('internal ', toString(s))),
       multiIf(s = 0, 'Server', s = 3 AND t % 3 = 0, 'Client', s IN (1, 2, 3), 'Server', 'Internal'),
       multiIf(s = 0, 'erp-procurement', s = 1, 'approval-saas', s = 2, 'capital-committee',
               s = 3, if(t % 3 = 0, 'edi-translator', 'supplier-portal'), 'erp-procurement'),
       multiIf(s = 0, map('erp.po_number', toString(4500000000 + t), 'facility.id', if(t % 2 = 0, 'STM-ICU', 'CLN-04'),
                          'erp.amount', toString(amount)),
               s IN (1, 2), map('po.number', toString(4500000000 + t)),
               s = 3, map('erp.po_number', toString(4500000000 + t)),
               map('db.system', 'oracle')),
       1000000, 'Unset'
FROM (
    SELECT number, intDiv(number, 10) AS t, number % 10 AS s,
           now64(9) - toIntervalSecond(6 * 86400) + toIntervalMillisecond(t % 500000000) AS start,
           -- hours, widely spread: a person approving (the committee and the dispatch take under an hour)
           toUInt64(4 * 3600000 * exp(((cityHash64(t, 'wait') % 1000) / 1000.0 - 0.5) * 2.5)) AS approval,
           1000 + cityHash64(t, 'amount') % 260000 AS amount
    FROM numbers({spans:UInt64})
)
WHERE s != 2 OR amount >= 200000
"""


def generate(store: Store, transactions: int) -> int:
    store.command(_GENERATE, {"spans": transactions * 10})
    return int(store.command("SELECT count() FROM otel_traces"))


def timed(store: Store, limit: int) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(days=7)
    started = time.perf_counter()
    found = discover(store, "erp.po_number,po.number", since, limit=limit)
    seconds = time.perf_counter() - started
    steps = {s.name: s for s in found.evidence.steps}
    capital = next((i.get("when") for i in found.workflow["steps"] if i.get("name") == "review_capital_request"), None)
    return {
        "limit": limit,
        "transactions": found.evidence.transactions,
        "seconds": round(seconds, 2),
        "steps": [s.name for s in found.evidence.steps],
        "capital_when": capital,
        "approve_human": steps["approve"].human if "approve" in steps else None,
        "one_of": any("one_of" in i for i in found.workflow["steps"]),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="triage-bench-discover-"))
    try:
        store = Store(f"chdb://{data}?database=bench_discover")
        store.migrate()
        started = time.perf_counter()
        spans = generate(store, args.transactions)
        generated = time.perf_counter() - started
        runs = [timed(store, limit) for limit in (10_000, args.transactions)]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    table = Table(title=f"discovery over {spans:,} spans ({args.transactions:,} POs, generated in {generated:.0f} s)")
    for column in ("transactions read", "seconds", "steps", "capital review", "approval human", "one_of"):
        table.add_column(column)
    for r in runs:
        table.add_row(
            f"{r['transactions']:,}", f"{r['seconds']:.1f}", " → ".join(r["steps"]), json.dumps(r["capital_when"]),
            str(r["approve_human"]), str(r["one_of"]),
        )  # fmt: skip
    Console().print(table)
    print(json.dumps({"bench": "discover", "spans": spans, "runs": runs}))


if __name__ == "__main__":
    main()
