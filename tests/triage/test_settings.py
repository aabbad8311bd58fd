"""Settings precedence (YAML < TRIAGE_* < flags) and errors that name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.durations import format_duration, parse_duration
from triage.errors import ConfigError
from triage.settings import load_settings
from triage.store import Store
from triage.store.dsn import parse_dsn


def test_precedence_yaml_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("port: 7000\notlp_http_port: 7001\nhost: 0.0.0.0\ningest: {batch_max_rows: 10}\n")
    settings = load_settings(
        config,
        {"port": 9000},
        environ={"TRIAGE_OTLP_HTTP_PORT": "9001", "TRIAGE_INGEST__BATCH_MAX_DELAY": "2s"},
    )
    assert (settings.port, settings.otlp_http_port, settings.host) == (9000, 9001, "0.0.0.0")
    assert settings.ingest.batch_max_rows == 10 and settings.ingest.batch_max_delay == 2.0


def test_config_file_from_env(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("port: 7100\n")
    assert load_settings(None, environ={"TRIAGE_CONFIG": str(config)}).port == 7100


def test_missing_file_is_named() -> None:
    with pytest.raises(ConfigError, match="cannot read config file /nope.yaml"):
        load_settings("/nope.yaml", environ={})


def test_env_error_names_the_source() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"TRIAGE_PORT": "eighty"})
    assert "TRIAGE_* environment" in str(caught.value) and "port:" in str(caught.value)


def test_workflow_errors_name_workflow_and_step(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(
        "workflows:\n"
        "  - name: invoice_sync\n    keys: [ap.invoice]\n    key_patterns: ['(a)(b)']\n"
        "    steps: [{name: received, match: {service: ap}}]\n    terminal: [posted]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    text = str(caught.value)
    assert "workflows[0] (invoice_sync).key_patterns" in text and "at most one capture group" in text


def test_a_workflow_name_with_a_nul_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(
        'workflows:\n  - name: "p2p\\0x"\n    keys: [k]\n    steps: [{name: a, match: {service: s}}]\n    terminal: [a]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "workflows[0]" in str(caught.value) and "NUL character" in str(caught.value)


def test_terminal_must_be_a_step(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(
        "workflows:\n  - name: w\n    keys: [k]\n    steps: [{name: a, match: {service: s}}]\n    terminal: [posted]\n"
    )
    with pytest.raises(ConfigError, match="terminal step 'posted' is not one of the steps"):
        load_settings(config, environ={})


def test_sla_falls_back_to_less_critical_tier(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text(
        "workflows:\n  - name: w\n    keys: [k]\n"
        "    steps: [{name: a, match: {service: s}, sla: {normal: 8h, critical: 30m}}]\n"
    )
    sla = load_settings(config, environ={}).workflows[0].steps[0].sla
    assert sla is not None
    assert (sla.for_criticality("critical"), sla.for_criticality("high"), sla.for_criticality("normal")) == (
        1800.0,
        28800.0,
        28800.0,
    )


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("2d") == 172800
    assert parse_duration(30) == 30.0
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("soon")
    assert format_duration(6 * 3600 + 300) == "6h 5m" and format_duration(45) == "45s"


def test_dsn_parsing() -> None:
    embedded = parse_dsn("chdb:///var/lib/triage?database=prod")
    assert embedded.embedded and embedded.path == "/var/lib/triage" and embedded.database == "prod"
    server = parse_dsn("https://ops:p%40ss@ch.internal:8443/triage")
    assert (server.host, server.port, server.secure, server.password, server.database) == (
        "ch.internal",
        8443,
        True,
        "p@ss",
        "triage",
    )
    assert "p@ss" not in server.describe()
    with pytest.raises(ConfigError, match="names no data directory"):
        parse_dsn("chdb://")
    with pytest.raises(ConfigError, match="must be letters, digits and underscores"):
        parse_dsn("http://h:8123/bad-name")


def test_retention_change_is_applied_to_existing_tables(chdb_path: Path) -> None:
    from tests.conftest import unique_dsn
    from triage.store import Store

    dsn = unique_dsn(chdb_path)
    Store(dsn).migrate()
    store = Store(dsn, raw_ttl_days=30, business_ttl_days=90)
    store.migrate()
    ttl = dict(
        store.query(
            "SELECT name, extract(engine_full, 'TTL (.*?) SETTINGS') FROM system.tables "
            "WHERE database = currentDatabase() AND name IN ('otel_traces', 'otel_logs', 'business_transactions')"
        ).result_rows
    )
    assert ttl == {
        "otel_traces": "toDateTime(Timestamp) + toIntervalDay(30)",
        "otel_logs": "TimestampTime + toIntervalDay(30)",
        "business_transactions": "toDateTime(UpdatedAt) + toIntervalDay(90)",
    }


def test_retention_leaves_a_refreshs_temporary_table_alone(store: Store) -> None:
    """A snapshot refresh running while the retention is reconciled lists its temporary table, which is
    gone by the time an ALTER would reach it: the server's start must not fail on it."""
    from triage.store import retention

    store.command(
        "CREATE TABLE `.tmp.inner_id.00000000-0000-0000-0000-000000000000` (At DateTime) ENGINE = MergeTree "
        "ORDER BY At TTL At + toIntervalDay(1)"
    )
    changed = retention.reconcile(store)
    assert not any(t.startswith(".tmp") for t in changed)
    store.business_ttl_days = 2
    assert "business_transactions" in retention.reconcile(store), "the store's own tables are still reconciled"


def test_patterns_clickhouse_runs_are_checked_with_re2() -> None:
    """A key pattern with a look-behind compiles in Python but not in ClickHouse: refused at load, naming why."""
    workflow = {
        "name": "p2p",
        "keys": ["erp.po_number"],
        "key_patterns": [r"(?<=PO)(\d{10})"],
        "steps": [{"name": "req", "match": {"service": "erp", "log_pattern": r"(\w+) again \1"}}],
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"workflows": [workflow]}, environ={})
    text = str(caught.value)
    assert "workflows[0] (p2p).key_patterns[0]: pattern is evaluated by ClickHouse" in text
    assert "invalid perl operator: (?<=" in text and "no look-around" in text
    assert "workflows[0] (p2p).steps[0] (req).match.log_pattern: pattern is evaluated by ClickHouse" in text
    with pytest.raises(ConfigError, match=r"correlation.transformation_patterns\[0\]: pattern is evaluated"):
        load_settings(None, {"correlation": {"transformation_patterns": ["fail(?!ed)"]}}, environ={})
    ok = {**workflow, "key_patterns": [r"PO(\d{10})"], "steps": [{"name": "req", "match": {"log_pattern": "again"}}]}
    assert load_settings(None, {"workflows": [ok]}, environ={}).workflows[0].key_patterns == [r"PO(\d{10})"]


def test_an_empty_api_key_is_refused() -> None:
    """`api_keys: [""]` would let through a request without a key: refused, saying how to run without keys."""
    with pytest.raises(ConfigError, match=r"api_keys\[0\] is empty; give a long random key, or no api_keys"):
        load_settings(None, {"api_keys": [""]}, environ={})
    with pytest.raises(ConfigError, match=r"api_keys\[1\] has spaces around it"):
        load_settings(None, {"api_keys": ["k" * 32, " padded "]}, environ={})
    assert load_settings(None, environ={"TRIAGE_API_KEYS": "a1, b2"}).api_keys == ["a1", "b2"]
