"""The ClickHouse store: one clickhouse-connect client per thread on an embedded chDB or a server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.query import QueryResult

from triage.errors import StoreError
from triage.store.dsn import StoreTarget, parse_dsn

if TYPE_CHECKING:
    from triage.settings import Settings

log = logging.getLogger("triage.store")

__all__ = ["CLUSTER_SESSION", "Store", "StoreTarget", "parse_dsn"]

# Query settings of every connection to a cluster (docs/operations.md, "Cluster schema").
CLUSTER_SESSION = {"prefer_global_in_and_join": 1, "distributed_foreground_insert": 1}


class Store:
    """A handle on the store; cheap to share across threads (each thread gets its own client)."""

    def __init__(
        self,
        dsn: str,
        *,
        cluster: str | None = None,
        raw_ttl_days: int = 7,
        business_ttl_days: int = 400,
    ) -> None:
        self.dsn = dsn
        self.target = parse_dsn(dsn)
        self.cluster = cluster
        self.raw_ttl_days = raw_ttl_days
        self.business_ttl_days = business_ttl_days
        self._local = threading.local()
        self._database_ready = False
        self._lock = threading.Lock()
        # Derived objects whose lost definition was set aside at open (triage/store/repair.py): the migrations
        # that create them are applied again.
        self.rebuild: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store the settings name, with their cluster and retention (not yet migrated)."""
        return cls(
            settings.store,
            cluster=settings.cluster,
            raw_ttl_days=settings.retention.raw_days,
            business_ttl_days=settings.retention.business_days,
        )

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def local_table(self, table: str) -> str:
        """Where `table`'s rows are: itself, or on a cluster its shards' local table when it is sharded."""
        if not self.cluster:
            return table
        from triage.store.cluster import LOCAL_SUFFIX, SHARDING_KEYS

        return f"{table}{LOCAL_SUFFIX}" if table in SHARDING_KEYS else table

    @property
    def create_database(self) -> str:
        """The statement that creates the store's database (on every node of its cluster)."""
        return f"CREATE DATABASE IF NOT EXISTS `{self.target.database}` {self.on_cluster}".rstrip()

    def migration_params(self) -> dict[str, str]:
        """The migrations' placeholders. Migrations are single-node text, whatever the store: on a cluster,
        triage/store/cluster.py rewrites the statements they give."""
        return {
            "ON_CLUSTER": "",
            "Replicated": "",
            "RAW_TTL_DAYS": str(int(self.raw_ttl_days)),
            "BUSINESS_TTL_DAYS": str(int(self.business_ttl_days)),
        }

    def _connect(self, database: str | None) -> Client:
        t = self.target
        try:
            if t.embedded:
                return self._open_embedded(database)
            return clickhouse_connect.get_client(
                # On a cluster: subqueries over the correlator's node-local scratch tables run where they
                # are (GLOBAL IN/JOIN), and an insert into a Distributed table is on its shards on return.
                settings=dict(CLUSTER_SESSION) if self.cluster else None,
                host=t.host,
                port=t.port,
                secure=t.secure,
                username=t.username,
                password=t.password,
                database=database or "default",
                autogenerate_session_id=False,
                tz_mode="aware",
            )
        except Exception as exc:
            raise StoreError(
                f"cannot open the store at {t.describe()}: {exc}. Check the --store DSN "
                "(TRIAGE_STORE) and that the data directory or server is reachable."
            ) from exc

    def _open_embedded(self, database: str | None) -> Client:
        from triage.store.repair import set_aside_empty_definitions

        def connect() -> Client:
            return clickhouse_connect.get_client(
                interface="chdb", path=self.target.path, database=database, tz_mode="aware"
            )

        try:
            return connect()
        except Exception:
            moved = set_aside_empty_definitions(self.target.path)
            if not moved:
                raise
            self.rebuild.update(moved)
            return connect()

    def _ensure_database(self) -> None:
        with self._lock:
            if self._database_ready:
                return
            bootstrap = self._connect(None)
            try:
                bootstrap.command(self.create_database)
            finally:
                if not self.target.embedded:
                    bootstrap.close()
            self._database_ready = True

    @property
    def client(self) -> Client:
        """This thread's client, connected to the store's database."""
        client = getattr(self._local, "client", None)
        if client is None:
            self._ensure_database()
            client = self._connect(self.target.database)
            self._local.client = client
        return client

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self.client.command(sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return self.client.query(sql, parameters=parameters)

    def insert(
        self,
        table: str,
        rows_or_columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        *,
        column_oriented: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.client.insert(
            table,
            rows_or_columns,
            column_names=list(column_names),
            column_oriented=column_oriented,
            settings=settings,
        )

    def ping(self) -> bool:
        try:
            return int(self.command("SELECT 1")) == 1
        except Exception as exc:
            log.warning("event=store_ping_failed store=%s error=%r", self.target.describe(), exc)
            return False

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied now."""
        from triage.store import migrations, retention

        applied = [f"{m.version:04d}_{m.name}" for m in migrations.apply_all(self)]
        retention.reconcile(self)
        return applied

    def pending_migrations(self) -> list[str]:
        from triage.store import migrations

        return [f"{m.version:04d}_{m.name}" for m in migrations.pending(self)]

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None and not self.target.embedded:
            client.close()
        self._local = threading.local()
