"""The cluster DDL, read as a DBA reviews it: no ClickHouse cluster runs here, so every table's generated
text is checked, the embedded engine parses each statement, and the sharding keys are evaluated over the
real tables; the single-node DDL stays what it was."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from app.cli import main
from triage.errors import ConfigError, MigrationError
from triage.settings import Shard
from triage.store import Store, cluster, migrations, retention
from triage.store.cluster import TRANSACTION_HASH, ClusterSchema

UNREACHABLE = "http://127.0.0.1:1/triage"
LOCAL = "'/clickhouse/tables/{shard}/triage/%s_local', '{replica}'"
GLOBAL = "'/clickhouse/tables/global/triage/%s', '{shard}-{replica}'"
TRACE = "cityHash64(TraceId)"
SERIES = "cityHash64(ServiceName, MetricName, Attributes)"
# Every table the migrations create: (category, single-node engine, sharding key), written out here so
# that a change of placement is a change of this test too.
TABLES: dict[str, tuple[str, str, str | None]] = {
    "otel_traces": ("sharded", "MergeTree()", TRACE),
    "otel_traces_trace_id_ts": ("sharded", "MergeTree()", TRACE),
    "otel_logs": ("sharded", "MergeTree()", f"if(TraceId = '', cityHash64(Timestamp, Body, ServiceName), {TRACE})"),
    "otel_metrics_gauge": ("sharded", "MergeTree()", SERIES),
    "otel_metrics_sum": ("sharded", "MergeTree()", SERIES),
    "otel_metrics_histogram": ("sharded", "MergeTree()", SERIES),
    "otel_metrics_exponential_histogram": ("sharded", "MergeTree()", SERIES),
    "otel_metrics_summary": ("sharded", "MergeTree()", SERIES),
    "queue_lag": ("sharded", "MergeTree()", "cityHash64(CAST(Queue, 'String'))"),
    "trace_keys": ("sharded", "ReplacingMergeTree(FirstSeen)", "cityHash64(Workflow, Key)"),
    "trace_edges": ("sharded", "ReplacingMergeTree(SeenAt)", "cityHash64(FromTrace)"),
    "business_events": ("sharded", "ReplacingMergeTree(IngestedAt)", "cityHash64(Workflow, Key)"),
    "business_transactions": ("sharded", "ReplacingMergeTree(Version)", "cityHash64(Workflow, Key)"),
    "transaction_causes": ("sharded", "ReplacingMergeTree(Version)", "cityHash64(Workflow, Key)"),
    "triage_migrations": ("global", "ReplacingMergeTree(AppliedAt)", None),
    "log_tail_positions": ("global", "ReplacingMergeTree(Version)", None),
    "correlator_state": ("global", "ReplacingMergeTree(UpdatedAt)", None),
    "alert_state": ("global", "ReplacingMergeTree(Version)", None),
    "alert_events": ("global", "MergeTree()", None),
    "alert_silences": ("global", "ReplacingMergeTree(Version)", None),
    "alert_rules": ("global", "ReplacingMergeTree(Version)", None),
    "alert_dead_letters": ("global", "MergeTree()", None),
    "triage_audit": ("global", "MergeTree", None),
    "triage_leases": ("global", "MergeTree", None),
    "workflow_targets": ("global", "ReplacingMergeTree(RecordedAt)", None),
    "correlator_touched": ("node", "Memory", None),
    "correlator_affected": ("node", "Memory", None),
    "correlator_keyed": ("node", "Memory", None),
    "correlator_ids": ("node", "Memory", None),
    "otel_traces_otlp_in": ("node", "Null", None),
    "otel_traces_service_minutes": ("sharded", "AggregatingMergeTree", "cityHash64(CAST(ServiceName, 'String'))"),
    "otel_traces_peer_minutes": ("sharded", "AggregatingMergeTree", "cityHash64(Peer)"),
    "transaction_rollup": ("snapshot", "MergeTree", None),
    "transactions_attention": ("snapshot", "MergeTree", None),
    "transaction_flow": ("snapshot", "MergeTree", None),
    "workflow_transitions": ("snapshot", "MergeTree", None),
    "transaction_report": ("snapshot", "MergeTree", None),
}


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """main() points the root logger at this test's captured stderr: give the next test its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def cluster_ddl(name: str = "c") -> list[str]:
    table, steps = migrations.plan(Store(UNREACHABLE, cluster=name))
    return table + [s for _, statements in steps for s in statements]


def creating(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if re.match(rf"CREATE TABLE IF NOT EXISTS {table} ", s)]


def one_line(statement: str) -> str:
    return " ".join(statement.split())


def test_every_table_the_migrations_create_is_placed() -> None:
    table, steps = migrations.plan(Store(UNREACHABLE))
    names = {
        m["name"]
        for s in table + [s for _, statements in steps for s in statements]
        if (m := re.match(r"CREATE TABLE IF NOT EXISTS (?P<name>\w+)", s))
    }
    assert names == set(TABLES)
    assert set(cluster.SHARDING_KEYS) == {t for t, (kind, _, _) in TABLES.items() if kind == "sharded"}
    assert cluster.GLOBAL_TABLES == {t for t, (kind, _, _) in TABLES.items() if kind == "global"}
    assert cluster.SNAPSHOT_TABLES == {t for t, (kind, _, _) in TABLES.items() if kind == "snapshot"}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_each_table_has_its_cluster_form(table: str) -> None:
    kind, engine, key = TABLES[table]
    ddl = cluster_ddl()
    family, _, args = engine.partition("(")
    args = args.rstrip(")")
    if kind == "sharded":
        (local,) = creating(ddl, f"{table}_local")
        (distributed,) = creating(ddl, table)
        replica = LOCAL % table + (f", {args}" if args else "")
        assert local.startswith(f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER 'c' (")
        assert f"ENGINE = Replicated{family}({replica})" in local
        assert one_line(distributed) == (
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER 'c' AS {table}_local "
            f"ENGINE = Distributed('c', 'triage', '{table}_local', {key})"
        )
        assert ddl.index(local) < ddl.index(distributed)
        return
    if kind == "snapshot":
        (local,) = creating(ddl, f"{table}_local")
        (distributed,) = creating(ddl, table)
        assert re.search(r"\) ENGINE = MergeTree\n", local) and "Replicated" not in local
        assert one_line(distributed) == (
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER 'c' AS {table}_local "
            f"ENGINE = Distributed('c', 'triage', '{table}_local')"
        )
        return
    assert creating(ddl, f"{table}_local") == [] and not any(f"'{table}_local'" in s for s in ddl)
    (created,) = creating(ddl, table)
    assert created.startswith(f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER 'c' (")
    assert "Distributed(" not in created
    if kind == "global":
        replica = GLOBAL % table + (f", {args}" if args else "")
        assert f"ENGINE = Replicated{family}({replica})" in created
    else:
        assert re.search(rf"ENGINE = {engine}$", created) and "Replicated" not in created


def test_the_business_tables_are_sharded_as_the_correlator_owns_transactions() -> None:
    """Shard i of n owns hash % n = i - 1, the shard a Distributed insert over n shards sends the row to."""
    assert Shard(index=3, count=4).owns() == f"({TRANSACTION_HASH} % 4 = 2)"
    for table in ("business_events", "business_transactions", "transaction_causes", "trace_keys"):
        assert cluster.SHARDING_KEYS[table] is TRANSACTION_HASH


def test_column_changes_reach_the_distributed_table_and_the_rest_stays_on_the_shards() -> None:
    ddl = [one_line(s) for s in cluster_ddl()]
    column = "ADD COLUMN IF NOT EXISTS TriageRequest UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))"
    index = "ADD INDEX IF NOT EXISTS idx_triage_request TriageRequest TYPE minmax GRANULARITY 1"
    for table in ("otel_traces", "otel_logs", "otel_metrics_gauge", "otel_metrics_summary"):
        local_add = ddl.index(f"ALTER TABLE {table}_local ON CLUSTER 'c' {column}")
        assert ddl[local_add + 1] == f"ALTER TABLE {table} ON CLUSTER 'c' {column}"
        assert f"ALTER TABLE {table}_local ON CLUSTER 'c' {index}" in ddl
        assert not any(s.startswith(f"ALTER TABLE {table} ON CLUSTER 'c' ADD INDEX") for s in ddl)
    # 0014: a DEFAULT and the exporter's ALIAS columns, which a Distributed table computes itself
    alias = (
        "ADD COLUMN IF NOT EXISTS SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), "
        "CAST(SpanAttributes, 'Array(Tuple(String, String))'))"
    )
    assert f"ALTER TABLE otel_traces_local ON CLUSTER 'c' {alias}" in ddl
    assert f"ALTER TABLE otel_traces ON CLUSTER 'c' {alias}" in ddl
    observed = "MODIFY COLUMN ObservedTimestamp DateTime64(9) DEFAULT now64(9) CODEC(Delta, ZSTD(1))"
    assert f"ALTER TABLE otel_logs_local ON CLUSTER 'c' {observed}" in ddl
    assert f"ALTER TABLE otel_logs ON CLUSTER 'c' {observed}" in ddl
    received = "ADD COLUMN IF NOT EXISTS Received DateTime64(3) DEFAULT IngestedAt"
    assert f"ALTER TABLE business_events ON CLUSTER 'c' {received}" in ddl
    # a node's own Null table is altered where it is, on every node
    assert "ALTER TABLE otel_traces_otlp_in ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS triage_request UInt64" in ddl
    assert not any(re.match(r"ALTER TABLE \w+ (?!ON CLUSTER 'c')", s) for s in ddl)


def test_views_read_a_shard_s_new_rows_and_write_through_the_distributed_table() -> None:
    ddl = cluster_ddl()
    views = [s for s in ddl if s.startswith("CREATE MATERIALIZED VIEW")]
    (trace_ids,) = [v for v in views if "otel_traces_trace_id_ts_mv" in v]
    assert trace_ids.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_trace_id_ts_mv ON CLUSTER 'c'\n")
    assert "\nTO otel_traces_trace_id_ts\n" in trace_ids and "FROM otel_traces_local\n" in trace_ids
    native = [v for v in views if "otel_traces_otlp_in_mv" in v]
    assert len(native) == 2  # 0003, and 0011 recreating it with the request id
    for view in native:
        assert "ON CLUSTER 'c'\nTO otel_traces\n" in view
        assert "FROM otel_traces_otlp_in\n" in view and "_local" not in view
    drop = "DROP VIEW IF EXISTS otel_traces_otlp_in_mv ON CLUSTER 'c'"
    assert ddl.index(drop) < ddl.index(native[1])


def test_each_node_refreshes_its_snapshots_from_its_own_shard_and_a_backfill_runs_once() -> None:
    """A refreshable view reads the shard's local rows and replaces its node's snapshot; the Distributed
    snapshot table reads one replica per shard. A backfill reads and writes the Distributed tables."""
    ddl = cluster_ddl()
    (rollup,) = [s for s in ddl if s.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS transaction_rollup_mv")]
    assert "ON CLUSTER 'c'\nREFRESH EVERY 30 SECOND\nTO transaction_rollup_local\n" in rollup
    assert "FROM business_transactions_local FINAL" in rollup
    (transitions,) = [s for s in ddl if "TO workflow_transitions_local" in s]
    assert "FROM business_events_local\n" in transitions
    # The report's snapshot joins two tables sharded by the transaction (both local) and a global one.
    (report,) = [s for s in ddl if "TO transaction_report_local" in s]
    assert report.count("FROM business_transactions_local") == 3 and "FROM business_transactions " not in report
    assert report.count("FROM transaction_causes_local") == 3 and "FROM transaction_causes\n" not in report
    assert "FROM workflow_targets)" in report and "workflow_targets_local" not in report
    (minutes,) = [s for s in ddl if s.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_service_minutes")]
    assert "\nTO otel_traces_service_minutes\n" in minutes and "FROM otel_traces_local\n" in minutes
    backfills = [s for s in ddl if s.startswith("INSERT INTO")]
    assert [b.split()[2] for b in backfills] == ["otel_traces_service_minutes", "otel_traces_peer_minutes"]
    assert all("_local" not in b and "ON CLUSTER" not in b for b in backfills)
    schema = ClusterSchema("c", "triage")
    for statement in migrations.available()[0].statements(Store(UNREACHABLE).migration_params()):
        schema.rewrite(statement)
    with pytest.raises(MigrationError, match="refreshable view writes a snapshot table"):
        schema.rewrite("CREATE MATERIALIZED VIEW v REFRESH EVERY 1 MINUTE TO otel_traces AS SELECT * FROM otel_logs")


def test_the_single_node_ddl_is_what_the_migrations_always_gave() -> None:
    store = Store("chdb:///never/opened")
    table, steps = migrations.plan(store)
    assert [m for m, _ in steps] == migrations.available()
    for migration, statements in steps:
        assert statements == migration.statements(store.migration_params())
        assert not any("ON CLUSTER" in s or "Replicated" in s or "_local" in s for s in statements)
    assert table == [
        "CREATE TABLE IF NOT EXISTS triage_migrations (Version UInt32, Name String, AppliedAt DateTime64(3) "
        "DEFAULT now64(3)) ENGINE = ReplacingMergeTree(AppliedAt) ORDER BY Version"
    ]


def test_apply_all_runs_the_cluster_ddl_on_a_cluster_store() -> None:
    """The real migration path, on a store that records instead of connecting (no cluster runs here)."""

    class Recording(Store):
        def __init__(self) -> None:
            super().__init__(UNREACHABLE, cluster="c")
            self.ran: list[str] = []

        def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
            self.ran.append(sql)

        def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
            return SimpleNamespace(result_rows=[(1,), (2,)])  # 0001 and 0002 applied already

        def insert(self, table: str, rows: Any, column_names: Any, **_: Any) -> None:
            self.ran.append(f"INSERT INTO {table} {rows}")

    store = Recording()
    applied = migrations.apply_all(store)
    assert [m.version for m in applied] == [m.version for m in migrations.available()][2:]
    table, steps = migrations.plan(store)
    assert store.ran[0] == table[0] and "ReplicatedReplacingMergeTree" in table[0]
    ran = [s for s in store.ran if not s.startswith("INSERT INTO triage_migrations")]
    assert ran == table + [s for m, statements in steps if m.version > 2 for s in statements]
    assert "INSERT INTO triage_migrations [[3, 'otlp_native_traces']]" in store.ran


def test_retention_alters_the_tables_that_hold_rows_on_every_node() -> None:
    store = Store(UNREACHABLE, cluster="c", raw_ttl_days=3, business_ttl_days=90)
    assert retention.alteration(store, "otel_traces_local", "toDateTime(Timestamp) + toIntervalDay(7)") == (
        "ALTER TABLE `otel_traces_local` ON CLUSTER 'c' MODIFY TTL toDateTime(Timestamp) + toIntervalDay(3) "
        "SETTINGS materialize_ttl_after_modify = 0"
    )
    assert "toIntervalDay(90)" in str(
        retention.alteration(store, "alert_state", "toDateTime(UpdatedAt) + toIntervalDay(400)")
    )
    assert retention.alteration(store, "queue_lag_local", "toDateTime(Timestamp) + toIntervalDay(3)") is None


def test_a_table_drop_removes_the_distributed_table_before_the_shards() -> None:
    schema = ClusterSchema("c", "triage")
    for _, statements in migrations.plan(Store(UNREACHABLE))[1]:
        for statement in statements:
            schema.rewrite(statement)
    assert schema.rewrite("DROP TABLE IF EXISTS trace_edges SYNC") == [
        "DROP TABLE IF EXISTS trace_edges ON CLUSTER 'c' SYNC",
        "DROP TABLE IF EXISTS trace_edges_local ON CLUSTER 'c' SYNC",
    ]
    assert schema.rewrite("DROP TABLE alert_rules") == ["DROP TABLE alert_rules ON CLUSTER 'c'"]
    with pytest.raises(MigrationError, match="no earlier statement creates trace_edges"):
        schema.rewrite("ALTER TABLE trace_edges ADD COLUMN IF NOT EXISTS x UInt8")


def test_several_commands_and_query_settings_are_split_by_where_they_belong() -> None:
    schema = ClusterSchema("c", "triage")
    schema.rewrite(next(s for s in cluster_single_node() if "otel_traces  (" in s))
    got = schema.rewrite(
        "ALTER TABLE otel_traces ADD COLUMN IF NOT EXISTS A UInt8 DEFAULT toUInt8(1), "
        "ADD INDEX IF NOT EXISTS idx_a A TYPE minmax GRANULARITY 1 SETTINGS alter_sync = 2, mutations_sync = 2"
    )
    assert got == [
        "ALTER TABLE otel_traces_local ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS A UInt8 DEFAULT toUInt8(1), "
        "ADD INDEX IF NOT EXISTS idx_a A TYPE minmax GRANULARITY 1 SETTINGS alter_sync = 2, mutations_sync = 2",
        "ALTER TABLE otel_traces ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS A UInt8 DEFAULT toUInt8(1) "
        "SETTINGS alter_sync = 2, mutations_sync = 2",
    ]
    assert schema.rewrite("ALTER TABLE otel_traces DROP COLUMN IF EXISTS A") == [
        "ALTER TABLE otel_traces ON CLUSTER 'c' DROP COLUMN IF EXISTS A",
        "ALTER TABLE otel_traces_local ON CLUSTER 'c' DROP COLUMN IF EXISTS A",
    ]


def cluster_single_node() -> list[str]:
    table, steps = migrations.plan(Store(UNREACHABLE))
    return table + [s for _, statements in steps for s in statements]


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("CREATE TABLE IF NOT EXISTS shipments (Id String) ENGINE = MergeTree ORDER BY Id", "has no cluster placement"),
        ("CREATE TABLE scratch (Id String) ENGINE = Log", "engine Log has no cluster form"),
        ("CREATE TABLE copy AS otel_traces", "no column list of its own"),
        ("CREATE TABLE t ON CLUSTER 'x' (a UInt8) ENGINE = Memory", "already says ON CLUSTER"),
        (
            "CREATE TABLE IF NOT EXISTS queue_lag (Q String) ENGINE = ReplicatedMergeTree ORDER BY Q",
            "engine Replicated",
        ),
        ("INSERT INTO alert_rules VALUES ('r', 1)", "none of CREATE TABLE"),
        ("INSERT INTO transaction_rollup SELECT * FROM transaction_rollup", "not one table across the cluster"),
        ("CREATE VIEW v AS SELECT 1", "none of CREATE TABLE"),
        ("CREATE MATERIALIZED VIEW v ENGINE = MergeTree ORDER BY a AS SELECT 1 AS a", "none of CREATE TABLE"),
        ("CREATE MATERIALIZED VIEW v TO trace_keys AS SELECT * FROM spans_elsewhere", "creates spans_elsewhere"),
        (
            "CREATE MATERIALIZED VIEW v TO trace_keys AS SELECT * FROM otel_traces JOIN trace_edges ON 1",
            "reads a sharded table beside others",
        ),
        (  # co-located, but a view on insert fires on the first table's inserts only
            "CREATE MATERIALIZED VIEW v TO trace_keys AS SELECT * FROM business_transactions JOIN transaction_causes ON 1",
            "reads a sharded table beside others",
        ),
        (  # refreshed, but sharded by other keys: a node's rows of one do not join all of the other's
            "CREATE MATERIALIZED VIEW v REFRESH EVERY 1 MINUTE TO transaction_report AS SELECT * FROM "
            "business_transactions JOIN otel_traces ON 1",
            "reads a sharded table beside others",
        ),
        (
            "CREATE MATERIALIZED VIEW v REFRESH EVERY 1 MINUTE TO transaction_report AS SELECT * FROM "
            "business_transactions JOIN correlator_touched ON 1",
            "reads a sharded table beside others",
        ),
        ("ALTER TABLE otel_traces ADD COLUMN Z UInt8", "ADD without IF [NOT] EXISTS"),
        ("ALTER TABLE otel_logs DROP INDEX idx_body", "DROP without IF [NOT] EXISTS"),
        ("ALTER TABLE otel_traces MODIFY COLUMN Duration UInt64 TTL toDateTime(Timestamp) + 1", "column TTL"),
        ("ALTER TABLE otel_traces FREEZE", "the ALTER command FREEZE"),
        (
            "ALTER TABLE otel_traces DROP COLUMN IF EXISTS Duration, ADD COLUMN IF NOT EXISTS D UInt8",
            "drops columns beside other column changes",
        ),
    ],
)
def test_a_statement_it_cannot_place_is_refused_by_name(statement: str, why: str) -> None:
    schema = ClusterSchema("c", "triage")
    for single in cluster_single_node():
        schema.rewrite(single)
    with pytest.raises(MigrationError) as caught:
        schema.rewrite(statement)
    message = str(caught.value)
    assert why in message and statement[:40] in message and "nothing was run on the cluster" in message


def test_a_sharding_key_must_keep_every_version_of_a_row_on_one_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cluster.SHARDING_KEYS, "shipments", "cityHash64(Carrier)")
    schema = ClusterSchema("c", "triage")
    replacing = (
        "CREATE TABLE shipments (Id String, Carrier String, V UInt64) ENGINE = ReplacingMergeTree(V) ORDER BY Id"
    )
    with pytest.raises(MigrationError, match=r"reads \['Carrier'\], outside ORDER BY"):
        schema.rewrite(replacing)
    monkeypatch.setitem(cluster.SHARDING_KEYS, "shipments", "cityHash64(Shipper)")
    with pytest.raises(MigrationError, match=r"reads \['Shipper'\], not its columns"):
        schema.rewrite(replacing)


def test_a_cluster_name_that_would_break_the_ddl_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match='cluster name "it\'s"'):
        ClusterSchema("it's", "triage")


def test_migrate_print_shows_the_cluster_ddl_without_a_store(
    capsys: pytest.CaptureFixture[str], cli_logging: None
) -> None:
    assert main(["migrate", "--print", "--cluster", "east", "--store", "http://127.0.0.1:1/x"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-- Triage schema for cluster 'east', database `x`")
    assert "CREATE DATABASE IF NOT EXISTS `x` ON CLUSTER 'east';\n" in out and "\nUSE `x`;\n" in out
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/x/triage_migrations', " in out
    assert "ENGINE = Distributed('east', 'x', 'business_transactions_local', cityHash64(Workflow, Key));" in out
    assert "ENGINE = Distributed('east', 'x', 'otel_traces_local', cityHash64(TraceId));" in out
    assert "ALTER TABLE otel_traces ON CLUSTER 'east' ADD COLUMN IF NOT EXISTS SpanAttributeItems" in out
    assert "INSERT INTO triage_migrations (Version, Name) VALUES (15, 'leases');" in out
    body = [line for line in out.splitlines() if line and not line.startswith("--")]
    statements = "\n".join(body).split(";\n")
    assert len(statements) == len(cluster_ddl()) + 2 + len(migrations.available())  # database, USE, records
    assert out.rstrip().endswith(";") and ";;" not in out


def test_migrate_print_defaults_to_the_configured_cluster(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_logging: None
) -> None:
    monkeypatch.setenv("TRIAGE_CLUSTER", "west")
    assert main(["migrate", "--print", "--store", "http://127.0.0.1:1/x"]) == 0
    assert "ON CLUSTER 'west'" in capsys.readouterr().out
    monkeypatch.delenv("TRIAGE_CLUSTER")
    assert main(["migrate", "--print", "--store", "http://127.0.0.1:1/x"]) == 0
    single = capsys.readouterr().out
    assert "ON CLUSTER" not in single and "Distributed" not in single and "_local" not in single
    assert "CREATE DATABASE IF NOT EXISTS `x`;" in single


def test_clickhouse_parses_every_cluster_statement_and_computes_every_sharding_key(store: Store) -> None:
    """Parsing is as far as one node goes: formatQuery reads each statement as the server would (ON
    CLUSTER, Replicated and Distributed engines included) without running it; each sharding key is then
    evaluated over the table it shards, as the Distributed engine will, and must be an unsigned integer."""
    for statement in cluster_ddl():
        formatted = str(store.command("SELECT formatQuery({q:String})", {"q": statement}))
        assert "ON CLUSTER c" in formatted or statement.startswith("INSERT INTO")
    for table, key in cluster.SHARDING_KEYS.items():
        described = store.query(f"DESCRIBE (SELECT {key} AS k FROM {table})").result_rows
        assert described[0][1] == "UInt64", (table, key)


def test_the_printed_single_node_ddl_builds_the_schema_migrate_builds(store: Store, chdb_path: Any) -> None:
    from tests.conftest import unique_dsn

    printed = Store(unique_dsn(chdb_path))
    script = migrations.script(printed)
    try:
        for statement in script.split(";\n"):
            sql = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if sql and not sql.startswith(("USE ", "CREATE DATABASE")):
                printed.command(sql.removesuffix(";"))
        retention.reconcile(printed)  # migrate's last step, which the printed DDL leaves to triage itself
        # A refreshable view's refresh in progress shows its new snapshot as `.tmp.inner_id.<uuid>`: not schema.
        columns = (
            "SELECT table, name, type, default_expression FROM system.columns "
            "WHERE database = {db:String} AND NOT startsWith(table, '.tmp')"
        )
        engines = "SELECT name, engine, engine_full FROM system.tables WHERE database = {db:String} AND NOT startsWith(name, '.tmp')"
        for sql in (columns, engines):
            want = store.query(f"{sql} ORDER BY ALL", {"db": store.target.database}).result_rows
            assert printed.query(f"{sql} ORDER BY ALL", {"db": printed.target.database}).result_rows == want
        assert printed.query("SELECT Version FROM triage_migrations ORDER BY Version").result_rows == [
            (m.version,) for m in migrations.available()
        ]
    finally:
        printed.command(f"DROP DATABASE IF EXISTS `{printed.target.database}`")
