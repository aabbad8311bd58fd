"""Which event Triage should derive from each span or log line of a transaction."""

from __future__ import annotations

from datetime import date

import pytest

from simulator.config import demo_config
from simulator.observe import Observer, health_components, health_error
from triage.settings import Settings


@pytest.fixture(scope="module")
def observer() -> Observer:
    return Observer(Settings.model_validate(demo_config(40, "t", None, date(2027, 1, 14))))


def span(observer: Observer, name: str, service: str, kind: str = "Server", error: str | None = None, **attrs: object):
    return observer.span(
        "procure_to_pay",
        service=service,
        name=name,
        kind=kind,
        attributes=attrs,
        status_message=error,
        failed=error is not None,
        at_ns=1,
        emitted=1.0,
    )


def test_a_span_matching_a_step_is_progress_with_its_facility(observer: Observer) -> None:
    o = span(observer, "approve", "approval-saas", **{"po.number": "4500000001", "facility.id": "STM-ICU"})
    assert o is not None and o.step == "budget_approval" and o.progress and o.facility == "STM-ICU"
    assert span(observer, "approve", "erp-procurement") is None, "same name, another service: no step, no event"


def test_errors_by_status_or_http_5xx_and_their_peer(observer: Observer) -> None:
    o = span(
        observer,
        "POST /approval-requests",
        "erp-procurement",
        "Client",
        "returned 503",
        **{"peer.service": "approval-saas"},
    )
    assert o is not None and o.error and not o.failure and o.peer == "approval-saas"
    o = span(observer, "GET /x", "erp-procurement", "Client", **{"http.response.status_code": 502})
    assert o is not None and o.error
    assert span(observer, "GET /x", "erp-procurement", "Client", **{"http.response.status_code": 404}) is None


def test_a_step_span_with_an_error_is_no_progress(observer: Observer) -> None:
    o = span(observer, "approve", "approval-saas", error="boom")
    assert o is not None and o.step == "budget_approval" and not o.progress


def test_transformation_errors_are_failures(observer: Observer) -> None:
    o = span(observer, "map", "integration-engine", error="schema validation failed: UOM missing")
    assert o is not None and o.failure
    o = span(observer, "map", "integration-engine", error="approval-saas returned 503 Service Unavailable")
    assert o is not None and not o.failure


def test_messages_are_kept_with_destination_and_id(observer: Observer) -> None:
    attrs = {"messaging.destination.name": "wf.approvals", "messaging.message.id": "m1"}
    o = span(observer, "wf.approvals publish", "erp-procurement", "Producer", **attrs)
    assert o is not None and (o.destination, o.message_id, o.span_kind) == ("wf.approvals", "m1", "Producer")
    assert span(observer, "internal", "erp-procurement", "Internal", **attrs) is None


def channel_log(observer: Observer, body: str, severity: int):
    """A log line of the integration engine's supplier-orders channel."""
    return observer.log(
        "procure_to_pay",
        service="integration-engine",
        body=body,
        attributes={"channel": "supplier-orders"},
        severity=severity,
        at_ns=1,
        emitted=1.0,
    )


def test_logs_fail_on_their_channel(observer: Observer) -> None:
    body = "mapping failed for PO 4500000001 (Meridian Medical Supply): missing required field UOM"
    o = channel_log(observer, body, severity=17)
    assert o is not None and o.failure and o.service == "supplier-orders" and o.source == "log"
    info = channel_log(observer, "PO 4500000001 sent to Meridian Medical Supply", severity=9)
    assert info is None


def test_health_counts_service_and_peer_but_not_producers() -> None:
    assert health_components("erp-finance", "Client", {"peer.service": "ledger-api"}) == ("erp-finance", "ledger-api")
    assert health_components("erp-finance", "Producer", {"peer.service": "ledger-api"}) == ()
    assert health_error(False, {"http.response.status_code": 503}) and not health_error(False, {})
