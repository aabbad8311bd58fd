"""Every verdict the engine reaches in these tests by the columnar fast path is checked against the
reference state machine over the same events: the scenario tests hold the two to the same answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import correlator.engine
from correlator.columnar import EventColumns, FlowPlan, judge
from correlator.machine import Context, Verdict, evaluate


def _checked(plan: FlowPlan, cols: EventColumns, lo: int, hi: int, ctx: Context) -> Verdict:
    fast = judge(plan, cols, lo, hi, ctx)
    reference = evaluate(plan.workflow, cols.events(lo, hi), ctx)
    assert fast == reference, f"fast path {fast} != reference {reference} for {cols.key[lo]}"
    return fast


@pytest.fixture(autouse=True)
def fast_path_checked_against_reference(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(correlator.engine, "judge", _checked)
    yield
