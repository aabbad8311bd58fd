"""Keep every table's TTL equal to the configured retention, also after the setting changes.

Migrations create tables with the retention in force then; at each start this compares each
table's TTL with `retention.raw_days` (otel_* and queue_lag) or `retention.business_days` (the
rest) and alters the ones that differ. Old parts are not rewritten (materialize_ttl_after_modify=0):
the new TTL applies as parts merge, and ttl_only_drop_parts drops whole expired days.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triage.store import Store

log = logging.getLogger("triage.store")

_TTL = re.compile(r"^(?P<expr>.+?) \+ toIntervalDay\((?P<days>\d+)\)$")
_TABLE_TTLS = """
SELECT name, extract(engine_full, 'TTL (.*?)(?: SETTINGS|$)') AS ttl
FROM system.tables
WHERE database = currentDatabase() AND engine LIKE '%MergeTree%' AND ttl != ''
"""
_RAW_PREFIXES = ("otel_", "queue_lag")


def reconcile(store: Store) -> list[str]:
    """Alter the TTL of tables whose retention differs from the settings; return their names."""
    changed = []
    for table, ttl in store.query(_TABLE_TTLS).result_rows:
        match = _TTL.match(ttl.strip())
        if not match:
            continue
        want = store.raw_ttl_days if table.startswith(_RAW_PREFIXES) else store.business_ttl_days
        if int(match.group("days")) == int(want):
            continue
        store.command(
            f"ALTER TABLE `{table}` {store.on_cluster} MODIFY TTL {match.group('expr')} + toIntervalDay({int(want)}) "
            "SETTINGS materialize_ttl_after_modify = 0",
        )
        log.info("event=retention_changed table=%s from_days=%s to_days=%d", table, match.group("days"), want)
        changed.append(table)
    return changed
