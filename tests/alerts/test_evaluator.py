"""The evaluator against the real embedded ClickHouse, driven cycle by cycle with an explicit `now`:
rule conditions over transactions, grouped causes, queues and dependencies, `for:` durations,
resolution, restart, and the business gauges on /metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from alerts import Evaluator, list_alerts
from collector.queues import PUSH_SOURCE, QueueSample, write_samples
from correlator import refresh_gauges
from correlator.transactions import TRANSACTION_COLUMNS
from triage.settings import Settings, load_settings
from triage.store import Store

NOW = datetime.now(UTC).replace(microsecond=0)
COLUMNS = TRANSACTION_COLUMNS


def transaction(
    workflow: str,
    key: str,
    state: str,
    facility: tuple[str, str, str],
    value: float,
    cause: tuple[str, str, str] = ("", "", ""),
    since: timedelta = timedelta(0),
    due: timedelta | None = None,
) -> list[Any]:
    at = NOW - since
    return [
        workflow,
        key,
        state,
        *facility,
        "requisition",
        "budget_approval",
        at - timedelta(hours=1),
        at,
        NOW - due if due is not None else None,
        value,
        value / 1000,
        *cause,
        at if cause[0] else None,
        None,  # no forecast
        None,
        "",
        time.time_ns(),
    ]


ICU = ("STM-ICU", "St. Mary's ICU", "critical")
CLINIC = ("CLN-04", "Eastside Clinic", "normal")
SAAS_DOWN = ("dependency_error", "approval-saas", "approval-saas returned 503")


def seed(store: Store) -> None:
    store.insert(
        "business_transactions",
        [
            transaction("procure_to_pay", "4500000601", "blocked", ICU, 182000, SAAS_DOWN, timedelta(minutes=40)),
            transaction("procure_to_pay", "4500000602", "blocked", ICU, 50000, SAAS_DOWN, timedelta(minutes=10)),
            transaction(
                "procure_to_pay",
                "4500000603",
                "failed",
                CLINIC,
                950,
                ("transformation_failed", "supplier-orders", "mapping failed: missing UOM"),
                timedelta(hours=2),
            ),
            transaction(
                "procure_to_pay",
                "4500000604",
                "stalled",
                CLINIC,
                400000,
                ("awaiting_approval", "approval-saas", "budget_approval overdue"),
                timedelta(hours=3),
                due=timedelta(hours=3),
            ),
            transaction("procure_to_pay", "4500000605", "completed", ICU, 9000000),
            *[transaction("invoice_sync", f"INV-{i}", "in_progress", CLINIC, 10000) for i in range(3)],
        ],
        COLUMNS,
    )


def settings_for(store: Store, rules: list[dict[str, Any]], **extra: Any) -> Settings:
    alerts = {"rules": rules, "external_url": "https://triage.example", **extra.pop("alerts", {})}
    return load_settings(None, {"store": store.dsn, "alerts": alerts, **extra}, environ={})


def firing(store: Store) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for a in list_alerts(store, ["firing"]):
        out.setdefault(a.rule, []).append(a)
    return out


def test_transaction_rules_speak_business(store: Store) -> None:
    seed(store)
    close = (NOW + timedelta(days=1)).date().isoformat()
    rules = [
        {
            "name": "critical_po_blocked_30m",
            "severity": "page",
            "when": {"workflow": "procure_to_pay", "state": "blocked", "criticality": "critical", "min_age": "30m"},
            "group_by": ["workflow", "facility"],
        },
        {
            "name": "p2p_value_at_risk",
            "when": {"workflow": "procure_to_pay", "value_at_risk_over": "$500k"},
            "group_by": ["workflow"],
            "summary": "{value} at risk in {workflow} ({count} POs, top cause {top_cause})",
        },
        {
            "name": "invoices_before_close",
            "group_by": ["workflow"],
            "when": {"workflow": "invoice_sync", "state": ["in_progress", "stalled"], "period_close_within": "2d"},
            "summary": "{count} invoices not posted, period close {period_close} {period_close_in}",
        },
        {"name": "same_cause_many", "when": {"count_over": 1}, "group_by": ["cause_kind", "cause_component"]},
        {"name": "approvals_overdue", "when": {"overdue": "2h", "min_value": 100000}, "group_by": ["key"]},
    ]
    evaluator = Evaluator(store, settings_for(store, rules, correlation={"period_close": [close]}))
    report = evaluator.evaluate()
    assert not report.failed_rules
    alerts = firing(store)

    [blocked] = alerts["critical_po_blocked_30m"]  # 4500000602 is blocked only 10 minutes
    assert blocked.labels == {
        "alertname": "critical_po_blocked_30m",
        "severity": "page",
        "workflow": "procure_to_pay",
        "facility": "STM-ICU",
        "criticality": "critical",
        "state": "blocked",
    }
    assert blocked.keys == ["procure_to_pay/4500000601"] and blocked.value == 182000
    assert blocked.annotations["summary"] == (
        "1 procure_to_pay blocked at St. Mary's ICU: dependency_error on approval-saas ($182,000 at risk)"
    )
    assert blocked.dashboard_url == "https://triage.example/dashboards/transaction/procure_to_pay/4500000601"

    [risk] = alerts["p2p_value_at_risk"]  # 182k + 50k + 950 + 400k stuck; the completed $9M is not at risk
    assert risk.value == 632950 and risk.count == 4
    assert risk.annotations["summary"].startswith("$632,950 at risk in procure_to_pay (4 POs, top cause ")
    assert risk.annotations["value_at_risk"] == "632950.00"
    assert risk.dashboard_url == "https://triage.example/dashboards/?workflow=procure_to_pay"
    assert risk.annotations["description"].startswith("procure_to_pay 4500000604 (Eastside Clinic, normal, $400,000)")

    [invoices] = alerts["invoices_before_close"]
    summary = invoices.annotations["summary"]
    assert summary.startswith(f"3 invoices not posted, period close {close} in ") and summary[-1] in "hm", summary

    [grouped] = alerts["same_cause_many"]
    assert (grouped.labels["cause_kind"], grouped.labels["cause_component"], grouped.count) == (
        "dependency_error",
        "approval-saas",
        2,
    )

    [overdue] = alerts["approvals_overdue"]
    assert overdue.labels["key"] == "4500000604"

    far = settings_for(store, rules[2:3], correlation={"period_close": [(NOW + timedelta(days=10)).date().isoformat()]})
    assert not [
        m
        for m in Evaluator(store, far).evaluate().alerts
        if m.rule == "invoices_before_close" and m.status == "pending"
    ]

    # The business gauges exported rules are written over: the correlator publishes them after each cycle.
    refresh_gauges(store, datetime.now(UTC))
    labels = {
        "workflow": "procure_to_pay",
        "state": "blocked",
        "facility": "STM-ICU",
        "facility_name": "St. Mary's ICU",
        "criticality": "critical",
        "cause_kind": "dependency_error",
        "cause_component": "approval-saas",
    }
    assert REGISTRY.get_sample_value("triage_stuck_transactions", labels) == 2
    oldest = REGISTRY.get_sample_value("triage_stuck_transactions_oldest_seconds", labels)
    assert oldest is not None and 40 * 60 <= oldest < 45 * 60


def test_for_duration_resolution_and_restart(store: Store) -> None:
    seed(store)
    rules = [{"name": "po_blocked_10m", "when": {"state": "blocked"}, "for": "10m", "group_by": ["workflow"]}]
    settings = settings_for(store, rules)
    evaluator = Evaluator(store, settings)
    assert [a.status for a in evaluator.evaluate(NOW).alerts] == ["pending"]
    assert [a.status for a in evaluator.evaluate(NOW + timedelta(minutes=5)).alerts] == ["pending"]
    report = evaluator.evaluate(NOW + timedelta(minutes=10))
    [alert] = report.alerts
    assert (alert.status, alert.active_since, alert.fired_at) == ("firing", NOW, NOW + timedelta(minutes=10))

    restarted = Evaluator(store, settings)  # a new process: state comes from the store
    again = restarted.evaluate(NOW + timedelta(minutes=11))
    assert again.changed == 0 and [a.fired_at for a in again.alerts] == [alert.fired_at]

    store.insert(
        "business_transactions",
        [transaction("procure_to_pay", key, "completed", ICU, 1.0) for key in ("4500000601", "4500000602")],
        COLUMNS,
    )
    resolved = restarted.evaluate(NOW + timedelta(minutes=12))
    assert [(a.status, a.resolved_at) for a in resolved.alerts] == [("resolved", NOW + timedelta(minutes=12))]
    assert list_alerts(store, ["firing", "pending"]) == []


def test_queue_and_dependency_rules(store: Store) -> None:
    seed(store)
    write_samples(
        store,
        [
            QueueSample(
                queue="approvals",
                system="rabbitmq",
                time=NOW - timedelta(seconds=ago),
                backlog=backlog,
                consumers=0,
                oldest_age_seconds=oldest,
                source=PUSH_SOURCE,
            )
            for ago, backlog, oldest in ((60, 1200, 2400.0), (5, 1204, 2820.0))
        ],
    )
    spans = [
        [
            NOW - timedelta(seconds=30 + i),
            f"{i:032x}",
            f"{i:016x}",
            "POST /requests",
            "Client",
            "erp-procurement",
            {"peer.service": "approval-saas", "http.response.status_code": "503" if i < 8 else "200"},
            "Error" if i < 8 else "Unset",
            "Service Unavailable" if i < 8 else "",
        ]
        for i in range(10)
    ]
    store.insert(
        "otel_traces",
        spans,
        [
            "Timestamp",
            "TraceId",
            "SpanId",
            "SpanName",
            "SpanKind",
            "ServiceName",
            "SpanAttributes",
            "StatusCode",
            "StatusMessage",
        ],
    )
    rules = [
        {"name": "queue_stopped", "when": {"queue_status": ["stalled", "stopped"], "min_backlog": 1000}},
        {"name": "saas_errors", "when": {"error_rate_over": "50%", "service": ["approval-saas"], "min_calls": 5}},
        {"name": "other_errors", "when": {"error_rate_over": 0.5, "service": "inventory-api"}},
    ]
    Evaluator(store, settings_for(store, rules)).evaluate()
    alerts = firing(store)
    [queue] = alerts["queue_stopped"]
    assert queue.labels == {
        "alertname": "queue_stopped",
        "severity": "warning",
        "queue": "approvals",
        "cause_kind": "queue_backlog",
        "cause_component": "approvals",
    }
    assert queue.annotations["summary"].startswith("queue approvals is stopped (backlog 1,204, oldest 47m)")
    [saas] = alerts["saas_errors"]
    assert saas.labels["service"] == "approval-saas" and saas.labels["cause_kind"] == "dependency_error"
    # Business context: the stuck transactions that wait on the failing service.
    assert saas.annotations["summary"] == (
        "approval-saas fails 80% of calls (Service Unavailable); 3 stuck transactions ($632,000) wait on it"
    )
    assert "other_errors" not in alerts
    assert REGISTRY.get_sample_value("triage_queue_status", {"queue": "approvals", "status": "stopped"}) == 1
    assert REGISTRY.get_sample_value("triage_dependency_error_ratio", {"service": "approval-saas"}) == 0.8


def test_period_close_uses_the_configured_dates(store: Store) -> None:
    seed(store)
    rule = [
        {
            "name": "close",
            "when": {"workflow": "invoice_sync", "state": "in_progress", "period_close_within": "2d"},
            "summary": "{count} invoices not posted; period close {period_close} {period_close_in}",
        }
    ]
    today = datetime.now(UTC).date().isoformat()
    report = Evaluator(store, settings_for(store, rule, correlation={"period_close": [today]})).evaluate()
    assert [a.annotations["summary"] for a in report.alerts] == [f"3 invoices not posted; period close {today} today"]
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    report = Evaluator(store, settings_for(store, rule, correlation={"period_close": [yesterday]})).evaluate()
    assert [a.status for a in report.alerts] == ["resolved"], "the close has passed: the alert resolves"
