"""Which rows a cycle reads: only what arrived after the watermark, and now and then a sweep of the
overlap before it, which still finds an insert that became visible after a cycle had read past its stamp."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from correlator import Correlator
from correlator.transactions import get_transaction
from tests.workflows import ST_MARYS_ICU, budget_approval, po_sent, procure_to_pay
from triage.settings import load_settings
from triage.store import Store

OVERLAP = 2.0
_SPAN = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, SpanName, SpanKind, ServiceName, SpanAttributes, TriageIngestedAt)
VALUES ({at:DateTime64(9)}, {trace:String}, {span:String}, 'POST /requisitions', 'Server', 'erp-procurement',
        map('erp.po_number', {key:String}, 'facility.id', 'STM-ICU'), {ingested:DateTime64(3)})
"""


def _span(store: Store, key: str, ingested: datetime) -> None:
    params = {"at": ingested, "trace": f"trace-{key}", "span": f"span-{key}", "key": key, "ingested": ingested}
    store.command(_SPAN, params)


def test_a_late_visible_insert_is_found_by_the_next_sweep_and_other_cycles_read_only_new_rows(store: Store) -> None:
    config = {
        "facilities": [ST_MARYS_ICU],
        "workflows": [procure_to_pay(budget_approval(), po_sent({"span_name": "send PO"}))],
        "correlation": {"settle": 0, "overlap": OVERLAP},
    }
    settings = load_settings(None, {**config, "store": store.dsn}, environ={})
    correlator = Correlator(store, settings)
    _span(store, "4500000001", datetime.now(UTC) - timedelta(seconds=0.5))
    first = correlator.run_once()  # the first cycle after start sweeps
    assert get_transaction(store, "procure_to_pay", "4500000001") is not None
    # Stamped before the watermark: an insert that was in flight when the first cycle read past its stamp.
    _span(store, "4500000002", first.window_end - timedelta(seconds=0.3))
    second = correlator.run_once()
    # No re-read of the overlap: it starts at the watermark (stored to the millisecond).
    assert timedelta(0) <= first.window_end - second.window_start < timedelta(milliseconds=1)
    assert get_transaction(store, "procure_to_pay", "4500000002") is None
    time.sleep(OVERLAP)
    sweep = correlator.run_once()
    assert sweep.window_start <= first.window_end - timedelta(seconds=OVERLAP)
    found = get_transaction(store, "procure_to_pay", "4500000002")
    assert found is not None and found.current_step == "requisition"
