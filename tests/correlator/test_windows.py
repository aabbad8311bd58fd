"""Which rows a cycle reads (correlator/windows.py): only what arrived after the watermark; a sweep
once per overlap still finds an insert that became visible after a cycle had read past its stamp, and
reads nothing again when no window gained rows."""

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
    assert second.window_start == first.window_end  # no re-read of the overlap
    assert get_transaction(store, "procure_to_pay", "4500000002") is None
    time.sleep(OVERLAP)
    sweep = correlator.run_once()
    assert sweep.window_start <= first.window_end - timedelta(seconds=OVERLAP)
    found = get_transaction(store, "procure_to_pay", "4500000002")
    assert found is not None and found.current_step == "requisition"
    # The next sweep finds every window as it was read: it reads only what is new.
    time.sleep(OVERLAP)
    _span(store, "4500000003", datetime.now(UTC))
    time.sleep(0.1)
    quiet = correlator.run_once()
    assert quiet.window_start == sweep.window_end and quiet.touched_traces == 1
    assert get_transaction(store, "procure_to_pay", "4500000003") is not None
    # A window that gained a row since it was read is read again by the next sweep, found by its count.
    _span(store, "4500000004", quiet.window_end - timedelta(seconds=0.3))
    assert correlator.run_once().window_start == quiet.window_end
    assert get_transaction(store, "procure_to_pay", "4500000004") is None
    time.sleep(OVERLAP)
    again = correlator.run_once()
    assert again.window_start < quiet.window_end - timedelta(seconds=0.3)
    assert get_transaction(store, "procure_to_pay", "4500000004") is not None
