"""Parts torn by a full disk: found by the error that names them, detached when no acknowledged row is in them.

Seen with the embedded engine when the disk fills mid-insert: a part is committed with a file shorter than
its checksums say ("Cannot read all marks from file .../store/<uuid>/<part>/..."), and every read that
touches it fails from then on, the write pipeline's retry included. ClickHouse itself would move such a
part to detached/ at its next start, rows and all. Here it is detached at once (kept on disk under
detached/, as ClickHouse keeps broken parts), but only when it is one insert's part written after the
store last took a write: its rows then belong to batches the pipeline still holds and writes again. A torn
part older than that, or one a merge wrote (it holds rows of finished writes), is left in place and the
error stays: at the next start ClickHouse detaches it and restores the parts a merged one covered.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from pathlib import Path

from triage.store import Store

log = logging.getLogger("triage.store")

_TORN = re.compile(
    r"(?:Cannot read all (?:marks|data)|Empty marks file|CANNOT_READ_ALL_DATA|CHECKSUM_DOESNT_MATCH|CORRUPTED_DATA)"
    r".*?"
    r"/store/[0-9a-f]{3}/(?P<uuid>[0-9a-f-]{36})/(?P<part>[A-Za-z0-9_-]+)/",
    re.S,
)
_TABLE = "SELECT database, name FROM system.tables WHERE uuid = toUUID({uuid:String})"
_PART = """
SELECT modification_time FROM system.parts
WHERE database = {database:String} AND table = {table:String} AND name = {part:String} AND active
"""


def torn_part(error: str) -> tuple[str, str] | None:
    """The (table uuid, part name) a read error names as unreadable, or None for any other error."""
    match = _TORN.search(error)
    return (match.group("uuid"), match.group("part")) if match else None


def detach_torn_part(store: Store, error: str, written_after: datetime) -> str | None:
    """Detach the part `error` names if it was written after `written_after` (the store's last good write,
    UTC); return `database.table/part` when it did. Any other error, or an older part, changes nothing."""
    found = torn_part(error)
    if found is None:
        return None
    uuid, part = found
    # <partition>_<min block>_<max block>_<level>: level 0 is one insert's rows; a merged part holds rows of
    # earlier, finished writes (ClickHouse restores the parts it covers at its next start: restart for that).
    pieces = part.split("_")
    if len(pieces) < 4 or pieces[-1] != "0" or pieces[-2] != pieces[-3]:
        log.error(
            "event=torn_part_kept part=%s reason='a merged part holds rows of finished writes: restart Triage, and "
            "the store restores the parts it was merged from'",
            part,
        )
        return None
    tables = store.query(_TABLE, {"uuid": uuid}).result_rows
    if not tables:
        return None
    database, table = tables[0]
    rows = store.query(_PART, {"database": database, "table": table, "part": part}).result_rows
    if not rows:
        return None
    modified: datetime = rows[0][0]
    # modification_time has whole seconds: a part of the second the last good write ended in counts as new.
    if modified.astimezone(written_after.tzinfo) < written_after.replace(microsecond=0) - timedelta(seconds=1):
        log.error(
            "event=torn_part_kept table=%s.%s part=%s modified=%s reason='older than the last good write: it may "
            "hold acknowledged rows; detach it by hand (ALTER TABLE ... DETACH PART) once it is looked at'",
            database,
            table,
            part,
            modified,
        )
        return None
    store.command(f"ALTER TABLE `{database}`.`{table}` DETACH PART '{part}'")  # part: [A-Za-z0-9_-]+, see _TORN
    log.warning("event=torn_part_detached table=%s.%s part=%s modified=%s", database, table, part, modified)
    return f"{database}.{table}/{part}"


# Refreshable materialized views replace their snapshot table at every refresh (the new table is exchanged
# for the old one, which rewrites both definitions). A full disk during a refresh was seen to leave a
# snapshot's definition file empty, and the embedded engine then refuses to open the store at all. The
# snapshots are derived data (migration 0017): such a file is moved aside and the migration that creates
# the object is applied again, which rebuilds it.
# snapshot table → the tables its refreshable view (`<snapshot>_mv`) reads; dashboards/queries/snapshots.py
# keeps them fresh from the same list.
SNAPSHOTS: dict[str, tuple[str, ...]] = {
    "transaction_rollup": ("business_transactions",),
    "transactions_attention": ("business_transactions",),
    "transaction_flow": ("business_transactions",),
    "workflow_transitions": ("business_events",),
    "transaction_report": ("business_transactions", "transaction_causes", "workflow_targets"),
}
DERIVED = frozenset({f"{name}{suffix}" for name in SNAPSHOTS for suffix in ("", "_mv")})


def set_aside_empty_definitions(data_path: str) -> list[str]:
    """Move every empty definition file of a derived table or view in the embedded store at `data_path` to
    `<data>/repaired/` and return the objects' names. Definitions of tables that hold data are never
    touched (the engine keeps refusing to open, and its error says which file)."""
    moved = []
    for path in sorted(Path(data_path).glob("store/*/*/*.sql")):
        name = path.name[: -len(".sql")]
        if name not in DERIVED or path.stat().st_size != 0:
            continue
        aside = Path(data_path) / "repaired"
        aside.mkdir(exist_ok=True)
        path.rename(aside / f"{name}.sql.empty-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}")
        log.error(
            "event=empty_definition_set_aside object=%s file=%s reason='a full disk during a snapshot refresh left "
            "it empty; the migration that creates it runs again'",
            name,
            path,
        )
        moved.append(name)
    return moved
