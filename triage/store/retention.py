"""Keep every table's TTL equal to the configured retention, also after the setting changes.

Migrations create tables with the retention in force then; at each start this compares each
table's TTL with `retention.raw_days` (otel_* and queue_lag) or `retention.business_days` (the
rest) and alters the ones that differ. Old parts are not rewritten (materialize_ttl_after_modify=0):
the new TTL applies as parts merge, and ttl_only_drop_parts drops whole expired days.

In cluster mode system.tables lists the tables that hold rows: each sharded table's `T_local` and the
global tables, never a Distributed `T` (it has no TTL). The ALTER runs ON CLUSTER on exactly those.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triage.store import Store

log = logging.getLogger("triage.store")

_TTL = re.compile(r"^(?P<expr>.+?) \+ toIntervalDay\((?P<days>\d+)\)$")
# A refreshable view's refresh fills a temporary table (`.tmp.inner_id.<uuid>`) that it then exchanges for
# its snapshot and drops: listed here while a refresh runs, gone by the time an ALTER reaches it.
_TABLE_TTLS = """
SELECT name, extract(engine_full, 'TTL (.*?)(?: SETTINGS|$)') AS ttl
FROM system.tables
WHERE database = currentDatabase() AND engine LIKE '%MergeTree%' AND ttl != '' AND NOT startsWith(name, '.tmp')
"""
_RAW_PREFIXES = ("otel_", "queue_lag")
# Tables whose TTL is their own, not a retention setting's: lease rows are kept a week whatever the setting.
_FIXED = ("triage_leases",)


def reconcile(store: Store) -> list[str]:
    """Alter the TTL of tables whose retention differs from the settings; return their names."""
    changed = []
    for table, ttl in store.query(_TABLE_TTLS).result_rows:
        statement = alteration(store, table, ttl)
        if statement is None:
            continue
        store.command(statement)
        log.info("event=retention_changed table=%s from=%r statement=%r", table, ttl, statement)
        changed.append(table)
    return changed


def alteration(store: Store, table: str, ttl: str) -> str | None:
    """The ALTER that gives `table` (TTL `ttl` now) the configured retention; None when it has it."""
    match = _TTL.match(ttl.strip())
    if not match or table in _FIXED:
        return None
    want = store.raw_ttl_days if table.startswith(_RAW_PREFIXES) else store.business_ttl_days
    if int(match.group("days")) == int(want):
        return None
    return (
        f"ALTER TABLE `{table}` {store.on_cluster} MODIFY TTL {match.group('expr')} + toIntervalDay({int(want)}) "
        "SETTINGS materialize_ttl_after_modify = 0"
    )
