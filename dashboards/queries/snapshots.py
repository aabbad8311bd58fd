"""How fresh the pre-aggregated tables of migration 0017 are, and bringing them up to date before a read.

The transaction snapshots are refreshable materialized views over `business_transactions FINAL`: exact
as of their last refresh, which runs on a timer. A page reads them as they are when the store changed
since that refresh only if the last refresh was slow (a large store: it waits at most one interval);
when refreshing is cheap (a small store, a test) it refreshes and waits first, so what a page shows
follows every write. Cluster stores refresh on each node by the timer alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from triage.store import Store
from triage.store.repair import SNAPSHOTS

log = logging.getLogger("triage.dashboards")

# view → (the snapshot table it replaces, the tables it reads)
VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {f"{name}_mv": (name, reads) for name, reads in SNAPSHOTS.items()}
# A refresh that took at most this long is run on a read that finds the snapshot behind the store.
CHEAP_REFRESH_MS = 250
_STATUS = """
SELECT view, last_success_duration_ms
FROM system.view_refreshes
WHERE database = currentDatabase() AND view IN {views:Array(String)}
"""
_CHANGED = """
SELECT table, max(modification_time) FROM system.parts
WHERE database = currentDatabase() AND active AND table IN {tables:Array(String)}
GROUP BY table
"""


def ensure_fresh(store: Store, *views: str, stale: timedelta | None = None) -> None:
    """Refresh each of `views` that is behind the tables it reads, when refreshing it is cheap; and, with
    `stale`, each snapshot refreshed longer ago than that (its store was closed meanwhile, so its timer did
    not run), however long refreshing takes."""
    if store.cluster:
        return
    took = {r[0]: r[1] for r in store.query(_STATUS, {"views": list(views)}).result_rows}
    tables = sorted({t for v in views for t in VIEWS[v][1]})
    changed: dict[str, datetime] = {r[0]: r[1] for r in store.query(_CHANGED, {"tables": tables}).result_rows}
    for view in views:
        snapshot, sources = VIEWS[view]
        at = _refreshed_at(store, snapshot) if stale is not None else None
        if stale is not None and at is not None and at < _utc(datetime.now(UTC)) - stale:
            _refresh(store, view)
            continue
        took_ms = took.get(view)
        if took_ms is not None and took_ms > CHEAP_REFRESH_MS:
            continue
        newest = max((changed[t] for t in sources if t in changed), default=None)
        if newest is None:
            continue
        # Every row of a snapshot carries the time its refresh began reading; a part written in that
        # second or later may be missing from it (part times are whole seconds).
        at = at or _refreshed_at(store, snapshot)
        if at is not None and _utc(newest) < at.replace(microsecond=0):
            continue
        _refresh(store, view)


def _refreshed_at(store: Store, snapshot: str) -> datetime | None:
    """When the snapshot was last refreshed (naive UTC); None while it holds no row."""
    rows = store.query(f"SELECT RefreshedAt FROM {snapshot} LIMIT 1").result_rows
    return _utc(rows[0][0]) if rows else None


def _refresh(store: Store, view: str) -> None:
    store.command(f"SYSTEM REFRESH VIEW {view}")
    store.command(f"SYSTEM WAIT VIEW {view}")


def _utc(at: datetime) -> datetime:
    """A naive UTC time (the store returns naive server-time or aware values by column type)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
