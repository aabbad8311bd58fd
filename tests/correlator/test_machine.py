"""The state machine alone: states, causes and SLA arithmetic over hand-made events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from correlator.machine import Context, Event, Health, QueueInfo, evaluate
from correlator.priority import period_close_factor, score
from triage.settings import Workflow

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WORKFLOW = Workflow.model_validate(
    {
        "name": "procure_to_pay",
        "keys": ["erp.po_number"],
        "steps": [
            {"name": "requisition", "match": {"span_name": "POST /requisitions"}},
            {
                "name": "budget_approval",
                "match": {"service": "approval-saas"},
                "human": True,
                "sla": {"normal": "8h", "critical": "1h"},
            },
            {"name": "po_created", "match": {"span_name": "create PO"}, "sla": {"normal": "30m"}},
            {"name": "po_sent", "match": {"span_name": "send PO"}, "optional": False, "sla": {"normal": "1h"}},
        ],
        "terminal": ["po_sent"],
    }
)


def ev(step: str, minutes: float, **kw: object) -> Event:
    base: dict[str, object] = dict(
        step=step,
        at=T0 + timedelta(minutes=minutes),
        source="span",
        service="erp",
        trace_id="t1",
        span_kind="Server",
        status="ok",
        failure=False,
        detail="",
        peer="",
        destination="",
        message_id="",
        facility="STM-ICU",
        value=182000.0,
    )
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def ctx(minutes: float, criticality: str = "critical", **kw: object) -> Context:
    return Context(
        now=T0 + timedelta(minutes=minutes),
        criticality=criticality,
        health=kw.get("health", {}),
        queues=kw.get("queues", {}),
    )  # type: ignore[arg-type]


def test_completed_at_terminal_step() -> None:
    events = [ev("requisition", 0), ev("budget_approval", 10), ev("po_created", 12), ev("po_sent", 13)]
    v = evaluate(WORKFLOW, events, ctx(600))
    assert (v.state, v.current_step, v.cause) == ("completed", "po_sent", None)


def test_sla_depends_on_criticality() -> None:
    events = [ev("requisition", 0)]
    assert evaluate(WORKFLOW, events, ctx(59)).state == "in_progress"
    critical = evaluate(WORKFLOW, events, ctx(61))
    assert critical.state == "stalled" and critical.cause and critical.cause.kind == "awaiting_approval"
    assert critical.due_at == T0 + timedelta(hours=1)
    assert evaluate(WORKFLOW, events, ctx(61, criticality="normal")).state == "in_progress"


def test_events_in_any_order_give_the_same_verdict() -> None:
    events = [ev("po_created", 12), ev("requisition", 0), ev("budget_approval", 10)]
    v = evaluate(WORKFLOW, events, ctx(20))
    assert (v.state, v.current_step, v.next_step, v.started_at) == ("in_progress", "po_created", "po_sent", T0)


def test_own_failing_calls_block_before_the_sla() -> None:
    events = [
        ev("requisition", 0),
        ev("", 1, span_kind="Client", status="error", peer="approval-saas", detail="HTTP 503"),
    ]
    v = evaluate(WORKFLOW, events, ctx(2))
    assert v.state == "blocked" and v.cause is not None
    assert (v.cause.kind, v.cause.component, v.cause.detail) == ("dependency_error", "approval-saas", "HTTP 503")


def test_a_successful_retry_clears_the_error() -> None:
    events = [
        ev("requisition", 0),
        ev("", 1, span_kind="Client", status="error", peer="approval-saas"),
        ev("", 2, span_kind="Client", status="ok", peer="approval-saas"),
    ]
    assert evaluate(WORKFLOW, events, ctx(3)).state == "in_progress"


def test_transformation_failure_fails_the_transaction() -> None:
    events = [
        ev("requisition", 0),
        ev(
            "",
            5,
            source="log",
            service="supplier-orders",
            status="error",
            failure=True,
            detail="mapping failed: missing UOM",
        ),
    ]
    v = evaluate(WORKFLOW, events, ctx(6))
    assert v.state == "failed" and v.cause is not None
    assert (v.cause.kind, v.cause.component) == ("transformation_failed", "supplier-orders")


def test_unconsumed_message_past_the_sla_is_queue_backlog() -> None:
    queue = QueueInfo("approvals", "stopped", 1204, 2820.0)
    events = [ev("requisition", 0), ev("", 0.5, span_kind="Producer", destination="wf.approvals", message_id="m1")]
    assert evaluate(WORKFLOW, events, ctx(30, queues={"wf.approvals": queue})).state == "in_progress"
    v = evaluate(WORKFLOW, events, ctx(90, queues={"wf.approvals": queue}))
    assert v.state == "blocked" and v.cause is not None
    assert (v.cause.kind, v.cause.component) == ("queue_backlog", "approvals")
    assert "backlog 1,204" in v.cause.detail
    consumed = [*events, ev("", 1, span_kind="Consumer", destination="wf.approvals", message_id="m1")]
    assert evaluate(WORKFLOW, consumed, ctx(90)).cause.kind == "awaiting_approval"  # type: ignore[union-attr]


def test_unhealthy_next_step_service_is_dependency_error_but_another_service_is_not_blamed() -> None:
    events = [ev("requisition", 0)]
    sick = Health(calls=40, errors=30, first_error=T0, last_detail="HTTP 503")
    blamed = evaluate(WORKFLOW, events, ctx(90, health={"approval-saas": sick}))
    assert blamed.state == "blocked" and blamed.cause and blamed.cause.component == "approval-saas"
    unrelated = evaluate(WORKFLOW, events, ctx(90, health={"inventory-api": sick}))
    assert unrelated.state == "stalled" and unrelated.cause and unrelated.cause.kind == "awaiting_approval"


def test_loop_back_to_an_earlier_step_is_followed() -> None:
    events = [ev("requisition", 0), ev("budget_approval", 10), ev("requisition", 20)]
    v = evaluate(WORKFLOW, events, ctx(25))
    assert (v.current_step, v.next_step) == ("requisition", "budget_approval")
    assert v.due_at == T0 + timedelta(minutes=80)


def test_priority() -> None:
    assert score("completed", "critical", 1e6, 3600, 3600, 1) == 0
    low = score("stalled", "normal", 0, 3600, 3600, 1)
    high = score("stalled", "critical", 182000, 3600, 3600, 1)
    assert high > low * 3
    assert period_close_factor(T0, [T0.date()]) == 3.0
    assert period_close_factor(T0, []) == 1.0
