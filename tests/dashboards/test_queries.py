"""Filters as URL query strings, and the alerts query against a store with and without the alerts tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboards.filters import Filters
from dashboards.queries.alerts import TABLES, alerts_view
from dashboards.report import parse_period
from triage.store import Store


def test_filters_round_trip_through_the_query_string() -> None:
    f = Filters(range="7d", workflow="procure_to_pay", facility="STM-ICU", criticality="critical")
    assert f.query_string() == "?range=7d&workflow=procure_to_pay&facility=STM-ICU&criticality=critical"
    assert (
        Filters.from_query(
            {"range": "7d", "workflow": "procure_to_pay", "facility": "STM-ICU", "criticality": "critical"}
        )
        == f
    )
    assert Filters().query_string() == "", "the default view has a bare URL"
    alert_link = Filters.from_query(
        {"workflow": "procure_to_pay", "cause": "dependency_error", "component": "approval-saas"}
    )
    assert alert_link.narrowing == {"cause": "dependency_error", "component": "approval-saas"}
    assert Filters.from_query({"range": "1y", "criticality": "urgent"}) == Filters(), "bad values fall back"


def test_periods() -> None:
    assert parse_period(" 14d ") == "14d"
    for bad in ("soon", "30m", "1000d"):
        try:
            parse_period(bad)
        except ValueError as exc:
            assert "7d" in str(exc) or "between" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")


def test_alerts_view_missing_then_read(store: Store) -> None:
    for table in TABLES:
        store.command(f"RENAME TABLE {table} TO {table}_aside")
    try:
        assert alerts_view(store, datetime.now(UTC) - timedelta(days=1)).missing == list(TABLES)
    finally:
        for table in TABLES:
            store.command(f"RENAME TABLE {table}_aside TO {table}")
    store.command(
        "INSERT INTO alert_state (Fingerprint, Rule, Status, Severity, Labels, Annotations, ActiveSince, FiredAt, "
        "UpdatedAt, Count, Value, Keys, Version) VALUES "
        "('a', 'critical_work_blocked', 'firing', 'page', {'workflow': 'procure_to_pay'}, {'summary': 's'}, "
        "now64(3) - 60, now64(3) - 30, now64(3), 3, 250000, ['4500000002'], 1), "
        "('b', 'queue_stalled', 'pending', 'warning', {}, {}, now64(3), NULL, now64(3), 1, 0, [], 1), "
        "('c', 'old', 'resolved', 'warning', {}, {}, now64(3) - 864000, NULL, now64(3) - 864000, 1, 0, [], 1)"
    )
    view = alerts_view(store, datetime.now(UTC) - timedelta(days=1))
    assert not view.missing
    assert [(a.rule, a.status) for a in view.current] == [
        ("critical_work_blocked", "firing"),
        ("queue_stalled", "pending"),
    ]
    assert view.current[0].labels == {"workflow": "procure_to_pay"} and view.current[0].value == 250000
