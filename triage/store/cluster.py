"""Cluster DDL: the single-node migration statements rewritten for a sharded, replicated ClickHouse cluster.

Migrations are written once, for one node. With `cluster:` set, every statement passes through
`ClusterSchema.rewrite` in migration order; it places each table in one of three categories:

* sharded: `T_local`, a Replicated*MergeTree table on every node holding its shard's rows (replica path
  `/clickhouse/tables/{shard}/<database>/T_local`, replica `{replica}`), and `T`, a Distributed table
  over them, sharded by `SHARDING_KEYS[T]`. Triage reads and writes `T`, so its code knows no cluster.
* global: `T`, one Replicated table with a full copy on every node (path
  `/clickhouse/tables/global/<database>/T`, replica `{shard}-{replica}`, unique across the cluster):
  small state that any node must answer for consistently.
* node: Memory and Null tables, one per node, created ON CLUSTER but neither replicated nor distributed.
* snapshot: `T_local`, a plain (not replicated) MergeTree table on every node that a refreshable view on
  that node fills from its replica of the shard's rows, and `T`, a Distributed table over them that reads
  one replica per shard: each replica computes the same snapshot from the same replicated rows. Such a
  view may join sharded tables that share one sharding key (a transaction's rows of each on one shard)
  and global tables.

`INSERT INTO T SELECT ...` (a backfill) runs once, on the node that migrates, through the Distributed tables.

A statement it does not understand raises MigrationError: emitting DDL that half-works on a cluster
nobody here can run is worse than refusing. docs/operations.md ("Cluster schema") says why each key.
"""

from __future__ import annotations

import re

from triage.errors import ConfigError, MigrationError
from triage.settings.types import transaction_hash

# Shard ownership of a business transaction. The correlator's shard i of n owns the transactions with
# `TRANSACTION_HASH % n = i - 1`; a Distributed insert over n shards of weight 1 sends a row to shard
# `hash % n + 1` (remote_servers order), so each correlator shard's business rows sit on its own shard.
TRANSACTION_HASH = transaction_hash()
TRACE_HASH = "cityHash64(TraceId)"
LOCAL_SUFFIX = "_local"
_METRIC_SERIES = "cityHash64(ServiceName, MetricName, Attributes)"

# The sharding key of every sharded table. Deterministic keys throughout: a retried insert splits into
# the same per-shard blocks, so the replicated tables' insert deduplication drops the repeat (rand()
# would not), and every version of a ReplacingMergeTree row lands on one shard (checked below).
SHARDING_KEYS: dict[str, str] = {
    # a trace's spans together: trace lookups and stitching read one shard per trace
    "otel_traces": TRACE_HASH,
    "otel_traces_trace_id_ts": TRACE_HASH,
    # a log record with a trace beside that trace's spans; one without (raw engine lines) spread by
    # the identity the correlator gives it (correlator/stitch.py), not all onto the shard of ''
    "otel_logs": f"if(TraceId = '', cityHash64(Timestamp, Body, ServiceName), {TRACE_HASH})",
    # one series on one shard: rates and deltas of a series need no cross-shard merge
    "otel_metrics_gauge": _METRIC_SERIES,
    "otel_metrics_sum": _METRIC_SERIES,
    "otel_metrics_histogram": _METRIC_SERIES,
    "otel_metrics_exponential_histogram": _METRIC_SERIES,
    "otel_metrics_summary": _METRIC_SERIES,
    # one queue's samples together: rates come from consecutive cumulative counters. CAST: the hash of a
    # LowCardinality column is LowCardinality(UInt64), and a plain integer key steers clear of the bugs
    # such keys had (ClickHouse #10853); the value, and so the shard, is the same
    "queue_lag": "cityHash64(CAST(Queue, 'String'))",
    # a transaction's rows on the shard of the correlator that owns it
    "trace_keys": TRANSACTION_HASH,
    "business_events": TRANSACTION_HASH,
    "business_transactions": TRANSACTION_HASH,
    "transaction_causes": TRANSACTION_HASH,
    # an edge beside the spans of the trace it leaves
    "trace_edges": "cityHash64(FromTrace)",
    # one service's (one peer's) minutes on one shard, so the aggregates of a minute merge there
    "otel_traces_service_minutes": "cityHash64(CAST(ServiceName, 'String'))",
    "otel_traces_peer_minutes": "cityHash64(Peer)",
}

# Small state read from any node, written by one process at a time: the leases (written with
# insert_quorum, read with select_sequential_consistency in cluster mode), watermarks, alerting state,
# the audit log, log-tail positions and the record of applied migrations.
GLOBAL_TABLES = frozenset(
    {
        "triage_migrations",
        "correlator_state",
        "triage_leases",
        "alert_state",
        "alert_events",
        "alert_silences",
        "alert_rules",
        "alert_dead_letters",
        "triage_audit",
        "log_tail_positions",
        "workflow_targets",
    }
)
# Refreshable views' targets (migrations 0017, 0020): each node's snapshot of its own shard.
SNAPSHOT_TABLES = frozenset(
    {"transaction_rollup", "transactions_attention", "transaction_flow", "workflow_transitions", "transaction_report"}
)
_NODE_ENGINES = frozenset({"Memory", "Null"})
_CLUSTER_NAME = re.compile(r"^[\w.{}-]+$")

_CREATE_TABLE = re.compile(r"CREATE TABLE (?P<ine>IF NOT EXISTS )?`?(?P<name>\w+)`?\s*(?P<body>.*)\Z", re.I | re.S)
_CREATE_VIEW = re.compile(
    r"CREATE MATERIALIZED VIEW (?P<ine>IF NOT EXISTS )?`?(?P<name>\w+)`?"
    r"(?:\s+(?P<refresh>REFRESH\s+EVERY\s+\d+\s+\w+))?"
    r"\s+TO\s+`?(?P<to>\w+)`?\s+AS\s+(?P<select>SELECT\b.*)\Z",
    re.I | re.S,
)
_INSERT_SELECT = re.compile(r"INSERT INTO `?(?P<name>\w+)`?\s+(?P<select>SELECT\b.*)\Z", re.I | re.S)
_DROP = re.compile(r"DROP (?P<kind>TABLE|VIEW) (?P<ine>IF EXISTS )?`?(?P<name>\w+)`?\s*(?P<sync>SYNC)?\Z", re.I)
_ALTER = re.compile(r"ALTER TABLE `?(?P<name>\w+)`?\s+(?P<commands>\S.*)\Z", re.I | re.S)
_ENGINE = re.compile(r"\)\s*ENGINE\s*=\s*(?P<engine>\w+)(?:\s*(?P<args>\(\s*\)))?", re.I)
_ORDER_BY = re.compile(
    r"\bORDER BY\s+(?P<expr>.+?)(?=\s+(?:PARTITION BY|PRIMARY KEY|SAMPLE BY|TTL|SETTINGS)\b|\s*\Z)", re.I | re.S
)
_TABLE_REFERENCE = re.compile(r"\b(?P<array>ARRAY\s+)?(?:FROM|JOIN)\s+`?(?P<name>\w+)\b`?(?!\s*\()", re.I)
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b(?!\s*\()")
_QUERY_SETTINGS = re.compile(r"\s+SETTINGS\s+\w+\s*=.*\Z", re.I | re.S)
# What an ALTER command does to a sharded table: column changes go to T_local and T (so the Distributed
# table sees the new column, ALIAS and DEFAULT columns included); the rest concerns stored data only.
_COLUMN_COMMAND = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
_DATA_COMMAND = re.compile(
    r"^((ADD|DROP|MATERIALIZE|CLEAR)\s+(INDEX|PROJECTION)|(MODIFY|REMOVE|MATERIALIZE)\s+TTL|(MODIFY|RESET)\s+SETTING"
    r"|(ADD|DROP)\s+CONSTRAINT|MODIFY\s+(ORDER|SAMPLE)\s+BY|CLEAR\s+COLUMN|DELETE|UPDATE)\b",
    re.I,
)
_NEEDS_IF_EXISTS = re.compile(r"^(ADD|DROP)\s+(COLUMN|INDEX|PROJECTION|CONSTRAINT)\s+(?!IF\s+(NOT\s+)?EXISTS\b)", re.I)


class ClusterSchema:
    """Rewrites single-node statements, fed in migration order, into the cluster's DDL."""

    def __init__(self, cluster: str, database: str) -> None:
        if not _CLUSTER_NAME.match(cluster):
            raise ConfigError(
                f"cluster name {cluster!r} must be letters, digits and _ . - {{ }} (as remote_servers names it)"
            )
        self.cluster = cluster
        self.database = database
        self.placement: dict[str, str] = {}  # table -> sharded | global | node, as the statements created them

    @property
    def _on(self) -> str:
        return f"ON CLUSTER '{self.cluster}'"

    def rewrite(self, statement: str) -> list[str]:
        """The cluster's statements for one single-node statement, in the order to run them."""
        statement = statement.strip().removesuffix(";").rstrip()
        if re.search(r"\bON CLUSTER\b", _mask(statement), re.I):
            raise _refuse(statement, "it already says ON CLUSTER; write migrations for one node (${ON_CLUSTER})")
        for pattern, method in (
            (_CREATE_TABLE, self._create_table),
            (_CREATE_VIEW, self._create_view),
            (_DROP, self._drop),
            (_ALTER, self._alter),
            (_INSERT_SELECT, self._insert_select),
        ):
            match = pattern.match(statement)
            if match:
                return method(statement, match)
        raise _refuse(
            statement,
            "it is none of CREATE TABLE, CREATE MATERIALIZED VIEW ... TO, ALTER TABLE, DROP, INSERT ... SELECT",
        )

    def _create_table(self, statement: str, match: re.Match[str]) -> list[str]:
        name, ine, body = match["name"], match["ine"] or "", match["body"]
        if not body.startswith("("):
            raise _refuse(statement, "it has no column list of its own (CREATE TABLE ... AS is not placed)")
        engine = _ENGINE.search(_mask(body))
        if engine is None:
            raise _refuse(statement, "it names no ENGINE after its column list")
        family = engine["engine"]
        if family in _NODE_ENGINES:
            self.placement[name] = "node"
            return [f"CREATE TABLE {ine}{name} {self._on} {body}"]
        if not family.endswith("MergeTree") or family.startswith("Replicated"):
            raise _refuse(statement, f"engine {family} has no cluster form here: use a *MergeTree, Memory or Null")
        args = body[engine.start("args") + 1 : engine.end("args") - 1].strip() if engine["args"] else ""
        if name in SNAPSHOT_TABLES:
            self.placement[name] = "snapshot"
            local = name + LOCAL_SUFFIX
            return [
                f"CREATE TABLE {ine}{local} {self._on} {body}",
                f"CREATE TABLE {ine}{name} {self._on} AS {local}\n"
                f"ENGINE = Distributed('{self.cluster}', '{self.database}', '{local}')",
            ]
        if name in GLOBAL_TABLES:
            self.placement[name] = "global"
            path = f"'/clickhouse/tables/global/{self.database}/{name}', '{{shard}}-{{replica}}'"
            return [f"CREATE TABLE {ine}{name} {self._on} {_replicated(body, engine, path, args)}"]
        key = SHARDING_KEYS.get(name)
        if key is None:
            raise _refuse(
                statement,
                f"table {name} has no cluster placement: add its sharding key to SHARDING_KEYS "
                "(or the table to GLOBAL_TABLES) in triage/store/cluster.py and to docs/operations.md",
            )
        _check_sharding_key(statement, name, key, body, family)
        self.placement[name] = "sharded"
        local = name + LOCAL_SUFFIX
        path = f"'/clickhouse/tables/{{shard}}/{self.database}/{local}', '{{replica}}'"
        return [
            f"CREATE TABLE {ine}{local} {self._on} {_replicated(body, engine, path, args)}",
            f"CREATE TABLE {ine}{name} {self._on} AS {local}\n"
            f"ENGINE = Distributed('{self.cluster}', '{self.database}', '{local}', {key})",
        ]

    def _create_view(self, statement: str, match: re.Match[str]) -> list[str]:
        """A view triggers on inserts into the table it reads: a sharded source is read from its local
        table (each shard's new rows, once), and a sharded target is written through its Distributed table."""
        select, target = match["select"], match["to"]
        refresh = match["refresh"]
        if (self._known(statement, target) == "snapshot") != bool(refresh):
            raise _refuse(statement, "a refreshable view writes a snapshot table, and only it does")
        if refresh:
            # each node refreshes its own snapshot from its own shard's rows
            target += LOCAL_SUFFIX
        sources = [m for m in _TABLE_REFERENCE.finditer(_mask_strings(select)) if not m["array"]]
        for source in sources:
            self._known(statement, source["name"])
        sharded = [s for s in sources if self.placement[s["name"]] == "sharded"]
        if sharded and len(sources) > 1 and not (refresh and _co_located(sources, self.placement)):
            raise _refuse(statement, "it reads a sharded table beside others: say which rows each node joins")
        for source in reversed(sharded):  # from the end, so that earlier offsets still hold
            at = source.end("name")
            select = select[:at] + LOCAL_SUFFIX + select[at:]
        ine = match["ine"] or ""
        every = f"\n{refresh}" if refresh else ""
        return [f"CREATE MATERIALIZED VIEW {ine}{match['name']} {self._on}{every}\nTO {target}\nAS {select}"]

    def _insert_select(self, statement: str, match: re.Match[str]) -> list[str]:
        """A backfill, run once through the Distributed tables: every shard's rows, sent where they belong."""
        for name in [match["name"]] + [m["name"] for m in _TABLE_REFERENCE.finditer(_mask_strings(match["select"]))]:
            if self._known(statement, name) not in ("sharded", "global"):
                raise _refuse(
                    statement, f"{name} is not one table across the cluster; a backfill reads and writes those"
                )
        return [statement]

    def _drop(self, statement: str, match: re.Match[str]) -> list[str]:
        kind, ine, name = match["kind"].upper(), match["ine"] or "", match["name"]
        sync = " SYNC" if match["sync"] else ""
        names = [name]
        if kind == "TABLE" and self.placement.pop(name, None) in ("sharded", "snapshot"):
            names.append(name + LOCAL_SUFFIX)  # the Distributed table first: nothing reads a dropped shard
        return [f"DROP {kind} {ine}{n} {self._on}{sync}" for n in names]

    def _alter(self, statement: str, match: re.Match[str]) -> list[str]:
        name, commands = match["name"], match["commands"]
        placement = self._known(statement, name)
        settings = _QUERY_SETTINGS.search(_mask(commands))
        tail = commands[settings.start() :] if settings else ""
        if settings:
            commands = commands[: settings.start()]
        column, data = [], []
        for command in _split_top_level(commands):
            if _NEEDS_IF_EXISTS.match(command):
                raise _refuse(
                    statement,
                    f"{command.split()[0]} without IF [NOT] EXISTS fails on the replicas that replication "
                    "already altered: ON CLUSTER runs it once per shard, also on global tables",
                )
            if _COLUMN_COMMAND.match(command):
                if placement == "sharded" and re.search(r"\bTTL\b", _mask(command), re.I):
                    raise _refuse(statement, "a column TTL cannot go to a Distributed table: use MODIFY TTL")
                column.append(command)
            elif _DATA_COMMAND.match(command):
                data.append(command)
            else:
                raise _refuse(statement, f"the ALTER command {command.split()[0]} ... is not one it knows")
        if placement != "sharded":
            return [self._alter_one(name, column + data, tail)]
        local = self._alter_one(name + LOCAL_SUFFIX, column + data, tail)
        if not column:
            return [local]
        drops = [c for c in column if c.upper().startswith("DROP")]
        if drops and len(drops) != len(column):
            raise _refuse(statement, "it drops columns beside other column changes: write two ALTERs")
        distributed = self._alter_one(name, column, tail)
        # a new column exists on the shards before the Distributed table asks for it; a dropped one
        # leaves the Distributed table before the shards
        return [distributed, local] if drops else [local, distributed]

    def _alter_one(self, table: str, commands: list[str], tail: str) -> str:
        return f"ALTER TABLE {table} {self._on} {', '.join(commands)}{tail}"

    def _known(self, statement: str, table: str) -> str:
        placement = self.placement.get(table)
        if placement is None:
            raise _refuse(statement, f"no earlier statement creates {table}, so its cluster placement is unknown")
        return placement


def _co_located(sources: list[re.Match[str]], placement: dict[str, str]) -> bool:
    """Whether a refreshable view may join these tables on each node: the sharded ones are sharded by one
    key (a transaction's rows of each sit on one shard, so a node's local rows join completely), and the
    others are global (a full copy on every node)."""
    kinds = {placement[s["name"]] for s in sources}
    keys = {SHARDING_KEYS[s["name"]] for s in sources if placement[s["name"]] == "sharded"}
    return kinds <= {"sharded", "global"} and len(keys) == 1


def _replicated(body: str, engine: re.Match[str], path: str, args: str) -> str:
    """`body` with its engine made Replicated: Keeper path and replica first, then the engine's own arguments."""
    arguments = f"{path}, {args}" if args else path
    return f"{body[: engine.start('engine')]}Replicated{engine['engine']}({arguments}){body[engine.end() :]}"


def _check_sharding_key(statement: str, table: str, key: str, body: str, family: str) -> None:
    """The key reads only the table's columns, and the key of a merging engine (Replacing, Summing, ...)
    only its ORDER BY columns, so that the rows a merge or FINAL folds together land on one shard."""
    used = set(_IDENTIFIER.findall(_mask_strings(key)))
    close = _mask(body).index(")")
    columns = {item.split()[0].strip("`") for item in _split_top_level(body[1:close])}
    if used - columns:
        raise _refuse(statement, f"sharding key {key} of {table} reads {sorted(used - columns)}, not its columns")
    order = _ORDER_BY.search(_mask(body))
    ordered = set(_IDENTIFIER.findall(body[order.start("expr") : order.end("expr")])) if order else set()
    if family != "MergeTree" and used - ordered:
        raise _refuse(
            statement,
            f"sharding key {key} of {table} reads {sorted(used - ordered)}, outside ORDER BY: rows that {family} "
            "folds together (versions of one row) could land on different shards and never meet",
        )


def _split_top_level(text: str) -> list[str]:
    """`text` split at its commas outside parentheses and string literals, each part stripped."""
    masked, parts, start = _mask(text), [], 0
    for at, ch in enumerate(masked):
        if ch == ",":
            parts.append(text[start:at].strip())
            start = at + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _mask(text: str, depth: int = 0) -> str:
    """`text` with string literals and whatever sits deeper than `depth` parentheses blanked, so that
    patterns match only its outer clauses; same length, so positions carry over to `text`."""
    out, level, quoted, escaped = [], 0, False, False
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "'":
                quoted = False
            out.append(" ")
            continue
        if ch == "'":
            quoted = True
            out.append(" ")
            continue
        if ch == ")":
            level -= 1
        out.append(ch if level <= depth else " ")
        if ch == "(":
            level += 1
    return "".join(out)


def _mask_strings(text: str) -> str:
    return _mask(text, depth=1 << 30)


def _refuse(statement: str, why: str) -> MigrationError:
    first = " ".join(statement.split())[:160]
    return MigrationError(
        f"cannot write the cluster DDL of `{first}`: {why}. Fix the migration or triage/store/cluster.py; "
        "nothing was run on the cluster."
    )
