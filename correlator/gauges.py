"""The business gauges on /metrics, recomputed from the transactions table after a cycle (at most every
`correlation.gauges_every`)."""

from __future__ import annotations

from datetime import datetime

from correlator import metrics
from correlator.transactions import AT_RISK
from triage.metrics import publish
from triage.store import Store
from triage.vocabulary import STUCK, State, names

_STATES = """
SELECT Workflow, State, Criticality, count() FROM business_transactions FINAL
GROUP BY Workflow, State, Criticality
"""
_STUCK_GROUPS = """
SELECT Workflow, State, Facility, any(FacilityName), Criticality, CauseKind, CauseComponent, count(), sum(Value),
       dateDiff('millisecond', min(coalesce(CauseSince, UpdatedAt)), {now:DateTime64(3)}) / 1000
FROM business_transactions FINAL
WHERE has({stuck:Array(String)}, State)
GROUP BY Workflow, State, Facility, Criticality, CauseKind, CauseComponent
"""
# At risk as the read model says, judged at the refresh's time.
_AT_RISK = f"""
SELECT Workflow, Facility, Criticality, count(), sum(Value) FROM business_transactions FINAL
WHERE {AT_RISK}
GROUP BY Workflow, Facility, Criticality
"""


def refresh(store: Store, now: datetime) -> None:
    """Set every business gauge to what the store holds now; label sets that vanished are removed."""
    publish(metrics.TRANSACTIONS, {(r[0], r[1], r[2]): float(r[3]) for r in store.query(_STATES).result_rows})
    counts: dict[tuple[str, ...], float] = {}
    values: dict[tuple[str, ...], float] = {}
    oldest: dict[tuple[str, ...], float] = {}
    at_risk: dict[tuple[str, ...], float] = {}
    by_cause: dict[tuple[str, ...], float] = {}
    for r in store.query(_STUCK_GROUPS, {"now": now, "stuck": names(STUCK)}).result_rows:
        labels = tuple(str(x) for x in r[:7])
        workflow, facility, kind, component = labels[0], labels[2], labels[5], labels[6]
        counts[labels], values[labels], oldest[labels] = float(r[7]), float(r[8]), max(0.0, float(r[9]))
        at_risk[(workflow, facility)] = at_risk.get((workflow, facility), 0.0) + float(r[8])
        by_cause[(workflow, kind, component)] = by_cause.get((workflow, kind, component), 0.0) + float(r[7])
    publish(metrics.STUCK, counts)
    publish(metrics.STUCK_VALUE, values)
    publish(metrics.STUCK_OLDEST, oldest)
    publish(metrics.VALUE_AT_RISK, at_risk)
    publish(metrics.STUCK_BY_CAUSE, by_cause)
    risky = store.query(_AT_RISK, {"now": now, "open": str(State.IN_PROGRESS)}).result_rows
    publish(metrics.AT_RISK, {(str(r[0]), str(r[1]), str(r[2])): float(r[3]) for r in risky})
    publish(metrics.AT_RISK_VALUE, {(str(r[0]), str(r[1]), str(r[2])): float(r[4]) for r in risky})
