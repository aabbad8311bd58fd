"""Ordered, numbered SQL migrations applied at start-up and recorded in `triage_migrations`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

from triage.errors import MigrationError

if TYPE_CHECKING:
    from triage.store import Store

log = logging.getLogger("triage.store")

MIGRATIONS_TABLE = "triage_migrations"
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


def apply_all(store: Store) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now."""
    store.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} {store.on_cluster} "
        "(Version UInt32, Name String, AppliedAt DateTime64(3) DEFAULT now64(3)) "
        f"ENGINE = {store.replicated}ReplacingMergeTree(AppliedAt) ORDER BY Version"
    )
    done = applied(store)
    params = store.migration_params()
    newly = []
    for migration in available():
        if migration.version in done:
            continue
        log.info("event=migration_apply version=%d name=%s", migration.version, migration.name)
        for statement in migration.statements(params):
            try:
                store.command(statement)
            except Exception as exc:  # the driver raises several types; all mean the same here
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql failed on "
                    f"{store.target.describe()}: {exc}. The store stays at the last applied version; "
                    "fix the cause and run `triage migrate` again."
                ) from exc
        store.insert(MIGRATIONS_TABLE, [[migration.version, migration.name]], ["Version", "Name"])
        newly.append(migration)
    return newly


def pending(store: Store) -> list[Migration]:
    """Migrations shipped but not yet applied."""
    try:
        done = applied(store)
    except Exception:
        return available()
    return [m for m in available() if m.version not in done]
