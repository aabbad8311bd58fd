"""Ordered, numbered SQL migrations applied at start-up and recorded in `triage_migrations`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

from triage.errors import MigrationError
from triage.store.cluster import ClusterSchema

if TYPE_CHECKING:
    from triage.store import Store

log = logging.getLogger("triage.store")

MIGRATIONS_TABLE = "triage_migrations"
_MIGRATIONS_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
    "(Version UInt32, Name String, AppliedAt DateTime64(3) DEFAULT now64(3)) "
    "ENGINE = ReplacingMergeTree(AppliedAt) ORDER BY Version"
)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, params: dict[str, str]) -> list[str]:
        """The migration's statements with placeholders filled from our own settings."""
        text = Template(self.sql).substitute(params)
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in text.split(";\n") if s.strip().rstrip(";").strip()]


def available() -> list[Migration]:
    """Every migration shipped in the package, in version order."""
    found = []
    for entry in resources.files("triage.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


def applied(store: Store) -> set[int]:
    """Versions already recorded in the store."""
    rows = store.query(f"SELECT Version FROM {MIGRATIONS_TABLE} FINAL").result_rows
    return {int(r[0]) for r in rows}


def plan(store: Store) -> tuple[list[str], list[tuple[Migration, list[str]]]]:
    """Every statement `triage migrate` runs, in order: the migrations table's, then each migration's,
    rewritten for the store's cluster when it has one. Reads nothing from the store."""
    # The migrations are written for one node; cluster.py derives the cluster's DDL from that text.
    params = store.migration_params()
    if not store.cluster:
        return [_MIGRATIONS_TABLE_DDL], [(m, m.statements(params)) for m in available()]
    schema = ClusterSchema(store.cluster, store.target.database)
    table = schema.rewrite(_MIGRATIONS_TABLE_DDL)
    return table, [(m, [out for s in m.statements(params) for out in schema.rewrite(s)]) for m in available()]


_CREATES = re.compile(r"CREATE (?:TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS `?(\w+)`?", re.I)


def apply_all(store: Store) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now."""
    table, steps = plan(store)
    for statement in table:
        store.command(statement)
    done = applied(store)
    newly = []
    for migration, statements in steps:
        if migration.version in done and not _rebuilds(migration, statements, store.rebuild):
            continue
        log.info("event=migration_apply version=%d name=%s", migration.version, migration.name)
        for statement in statements:
            try:
                store.command(statement)
            except Exception as exc:  # the driver raises several types; all mean the same here
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql failed on "
                    f"{store.target.describe()}: {exc}. The store stays at the last applied version; "
                    "fix the cause and run `triage migrate` again."
                ) from exc
        if migration.version not in done:
            store.insert(MIGRATIONS_TABLE, [[migration.version, migration.name]], ["Version", "Name"])
        newly.append(migration)
    store.rebuild.clear()
    return newly


def _rebuilds(migration: Migration, statements: list[str], lost: set[str]) -> bool:
    """Whether an applied migration creates an object whose definition was lost (it is applied again: its
    statements are idempotent, IF NOT EXISTS, and its backfills fill empty tables only)."""
    created = {m.group(1) for s in statements for m in _CREATES.finditer(s)}
    if created & lost:
        log.warning(
            "event=migration_reapply version=%d name=%s rebuilds=%s",
            migration.version,
            migration.name,
            ",".join(sorted(created & lost)),
        )
        return True
    return False


def script(store: Store) -> str:
    """What `triage migrate` runs on an empty store, as SQL for `clickhouse-client --multiquery`."""
    database = store.target.database
    where = f"cluster '{store.cluster}'" if store.cluster else "a single node"
    table, steps = plan(store)
    parts = [
        f"-- Triage schema for {where}, database `{database}`: every statement `triage migrate` runs on an",
        "-- empty store, in order, and the row it records per migration.",
        f"{store.create_database};",
        "-- triage migrate connects to the database; clickhouse-client needs USE",
        f"USE `{database}`;",
        f"\n-- {MIGRATIONS_TABLE}: the migrations applied",
        *(f"{s};" for s in table),
    ]
    for migration, statements in steps:
        parts.append(f"\n-- {migration.version:04d}_{migration.name}.sql")
        parts += [f"{s.removesuffix(';')};" for s in statements]
        parts.append(
            f"INSERT INTO {MIGRATIONS_TABLE} (Version, Name) VALUES ({migration.version}, '{migration.name}');"
        )
    return "\n".join(parts) + "\n"


def pending(store: Store) -> list[Migration]:
    """Migrations shipped but not yet applied."""
    try:
        done = applied(store)
    except Exception:
        return available()
    return [m for m in available() if m.version not in done]
