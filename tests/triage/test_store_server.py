"""The production path: the same store code against a ClickHouse server, when one is given."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from collector import flatten
from collector.validate import validate_logs
from tests.collector.test_pipeline import _logs
from triage.store import Store

SERVER = os.environ.get("TRIAGE_TEST_CLICKHOUSE_URL")


@pytest.mark.skipif(
    not SERVER,
    reason="set TRIAGE_TEST_CLICKHOUSE_URL=http://user:pass@host:8123 to run "
    "the migrations and a round trip against a ClickHouse server",
)
def test_migrations_and_round_trip_on_a_server() -> None:
    assert SERVER is not None
    database = f"triage_test_{uuid.uuid4().hex[:8]}"
    store = Store(f"{SERVER.rstrip('/')}/{database}")
    try:
        applied = store.migrate()
        assert applied and applied[0] == "0001_raw_otel_tables"
        assert store.migrate() == []
        cols = flatten.log_columns([validate_logs(_logs(3, "server")).message])
        store.insert("otel_logs", [cols[n] for n in cols], list(cols), column_oriented=True)
        deadline = time.time() + 5
        while int(store.command("SELECT count() FROM otel_logs")) < 3 and time.time() < deadline:
            time.sleep(0.1)
        rows = store.query("SELECT Body FROM otel_logs ORDER BY Body").result_rows
        assert [r[0] for r in rows] == ["server 0", "server 1", "server 2"]
    finally:
        store.command(f"DROP DATABASE IF EXISTS {database}")
