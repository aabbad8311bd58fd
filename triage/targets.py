"""End-to-end targets: a transaction of a workflow should complete within the sum of its steps' SLAs at
its facility's tier. The executive report judges cycle times by them; `triage serve` records its
configuration's targets in `workflow_targets`, so that the report's snapshot (migration 0020) counts
the completions within them as the store refreshes it."""

from __future__ import annotations

from datetime import UTC, datetime

from triage.settings import Settings
from triage.store import Store
from triage.vocabulary import CRITICALITIES

CURRENT = "SELECT argMax(Keys, RecordedAt), argMax(Seconds, RecordedAt) FROM workflow_targets"


def end_to_end(settings: Settings) -> dict[str, float]:
    """Target seconds per "workflow|criticality" that has one: the sum of its steps' SLAs for that tier."""
    out = {}
    for w in settings.workflows:
        for tier in (str(c) for c in CRITICALITIES):
            total = sum(s.sla.for_criticality(tier) or 0 for s in w.steps if s.sla)
            if total:
                out[f"{w.name}|{tier}"] = total
    return out


def record(store: Store, settings: Settings) -> None:
    """Make this configuration's targets the store's (a no-op when they already are)."""
    targets = end_to_end(settings)
    if recorded(store) == targets:
        return
    store.insert(
        "workflow_targets",
        [[datetime.now(UTC), list(targets), list(targets.values())]],
        ["RecordedAt", "Keys", "Seconds"],
    )


def recorded(store: Store) -> dict[str, float]:
    """The targets the store holds (empty when none were recorded)."""
    keys, seconds = store.query(CURRENT).result_rows[0]
    return dict(zip(keys, seconds, strict=True))
