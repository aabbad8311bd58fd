"""Filters as URL query strings, the alerts query against a store with and without the alerts tables, and
the report's queries on rows written as the correlator writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from correlator.transactions import CAUSE_COLUMNS, TRANSACTION_COLUMNS
from dashboards.filters import Filters
from dashboards.queries import report as q
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


def _transaction(key: str, state: str, started: datetime, updated: datetime, cause: str = "") -> list[object]:
    kind, component = cause.split("/") if cause else ("", "")
    values = {
        "Workflow": "procure_to_pay",
        "Key": key,
        "State": state,
        "Facility": "STM-ICU",
        "FacilityName": "St. Mary's ICU",
        "Criticality": "critical",
        "StartedAt": started,
        "UpdatedAt": updated,
        "Value": 1000.0,
        "CauseKind": kind,
        "CauseComponent": component,
        "Version": 1,
    }
    defaults: dict[str, object] = {"DueAt": None, "CauseSince": None, "Priority": 0.0, "NextStepEta": None}
    defaults["RiskAt"] = None
    return [values.get(c, defaults.get(c, "")) for c in TRANSACTION_COLUMNS]


def test_report_cycle_times_count_fractions_of_a_second(store: Store) -> None:
    """At --speed, targets are seconds: whole-second differences would pass a 12.2 s completion as 12 s."""
    end = datetime.now(UTC).replace(microsecond=0)
    base = end - timedelta(minutes=30)
    rows = [
        _transaction("1", "completed", base + timedelta(seconds=0.1), base + timedelta(seconds=12.3)),  # 12.2 s
        _transaction("2", "completed", base + timedelta(seconds=0.9), base + timedelta(seconds=12.7)),  # 11.8 s
    ]
    store.insert("business_transactions", rows, TRANSACTION_COLUMNS)
    [cycle] = q.cycle_times(store, end - timedelta(hours=1), end, {"procure_to_pay|critical": 12.0})
    assert (cycle.completed, cycle.within_target) == (2, 1)
    assert cycle.p50_seconds == pytest.approx(12.0, abs=0.01)


def test_report_causes_are_those_of_the_periods_transactions(store: Store) -> None:
    """A cause counts behind the period's stalls only for a transaction that started in the period, as
    the stall counts themselves do: else "behind N stalled transactions" could exceed the stalls."""
    end = datetime.now(UTC)
    start = end - timedelta(hours=1)
    recent, old = end - timedelta(minutes=10), end - timedelta(hours=3)
    store.insert(
        "business_transactions",
        [
            _transaction("new", "blocked", recent, recent, "dependency_error/approval-saas"),
            _transaction("old", "blocked", old, old, "dependency_error/approval-saas"),
            _transaction("older", "stalled", old, old, "awaiting_approval/approval-saas"),
        ],
        TRANSACTION_COLUMNS,
    )
    detected = end - timedelta(minutes=1)
    causes = [
        {
            "Workflow": "procure_to_pay",
            "Key": key,
            "Kind": kind,
            "Component": "approval-saas",
            "Detail": "",
            "Since": None,
            "Evidence": "{}",
            "DetectedAt": detected,
            "Active": 1,
            "Version": 1,
        }
        for key, kind in (("new", "dependency_error"), ("old", "dependency_error"), ("older", "awaiting_approval"))
    ]
    store.insert("transaction_causes", [[c[name] for name in CAUSE_COLUMNS] for c in causes], CAUSE_COLUMNS)
    found = q.cause_stalls(store, start, end)
    assert [(c.kind, c.component, c.transactions) for c in found] == [("dependency_error", "approval-saas", 1)]
    split = q.breakdowns(store, start, end)
    assert [(w.started, w.stalled) for w in split.workflows] == [(1, 1)]
