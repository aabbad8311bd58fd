"""Ground-truth derivation: the simulator's expected verdicts follow the states and causes of docs/correlation.md,
agree with the correlator's own state machine on random event histories, and say when they are
too close to a change to be held against Triage."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from correlator.machine import Context, Event, Health, QueueInfo, evaluate
from simulator.config import demo_config
from simulator.observe import LOG, SPAN, Observation
from simulator.truth import HealthLedger, Judge, Margins
from triage.settings import Settings

T0 = 1_800_000_000.0  # seconds since the epoch: the histories below start here
SPEED = 40.0


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.model_validate(demo_config(SPEED, "t", None, datetime(2027, 1, 14).date()))


def judge(settings: Settings, health: HealthLedger | None = None) -> Judge:
    conf = settings.correlation
    return Judge(settings, health or HealthLedger(conf.health_window, conf.dependency_error_rate, 3))


def ob(
    at: float,
    step: str = "",
    *,
    error: bool = False,
    failure: bool = False,
    kind: str = "Internal",
    service: str = "svc",
    peer: str = "",
    destination: str = "",
    message_id: str = "",
    facility: str = "STM-ICU",
    source: str = SPAN,
    emitted: float | None = None,
    value: float = 0.0,
) -> Observation:
    return Observation(
        at_ns=int((T0 + at) * 1e9),
        emitted=T0 + (at if emitted is None else emitted),
        source=source,
        step=step,
        error=error,
        failure=failure,
        span_kind=kind if source == SPAN else "",
        service=service,
        peer=peer,
        destination=destination,
        message_id=message_id,
        facility=facility,
        value=value,
    )


def verdict(j: Judge, workflow: str, obs: list[Observation], at: float) -> tuple[str, str | None, str | None]:
    e = j.expected(workflow, obs, T0 + at, T0 + at)
    assert e is not None
    return e.state, e.cause_kind, e.component


# budget_approval's SLA at a critical facility is 3m of simulated time: 18 s at ×10.
REQ = ob(0, "requisition", kind="Server", service="erp-procurement")
SENT = ob(0.01, kind="Producer", service="erp-procurement", destination="wf.approvals", message_id="m1")


def test_a_terminal_step_completes_and_nothing_after_matters(settings: Settings) -> None:
    steps = ["requisition", "budget_approval", "po_created", "po_sent", "goods_received", "invoice_matched", "posted"]
    obs = [ob(i, s, kind="Server") for i, s in enumerate(steps)]
    assert verdict(judge(settings), "procure_to_pay", obs, 1000) == ("completed", None, None)


def test_healthy_work_is_in_progress_until_its_next_step_is_overdue(settings: Settings) -> None:
    j = judge(settings)
    received = [REQ, SENT, ob(2, kind="Consumer", destination="wf.approvals", message_id="m1")]
    assert verdict(j, "procure_to_pay", received, 17.9) == ("in_progress", None, None)
    assert verdict(j, "procure_to_pay", received, 18.1) == ("stalled", "awaiting_approval", "approval-saas")
    # A normal facility has 10m (60 s here).
    clinic = [replace(o, facility="CLN-EAST") for o in received]
    assert verdict(j, "procure_to_pay", clinic, 59) == ("in_progress", None, None)


def test_a_message_nobody_took_is_a_queue_backlog_on_the_configured_queue(settings: Settings) -> None:
    assert verdict(judge(settings), "procure_to_pay", [REQ, SENT], 30) == ("blocked", "queue_backlog", "approvals")


def test_own_failed_calls_block_at_once_and_name_the_peer(settings: Settings) -> None:
    call = ob(1, error=True, kind="Client", service="erp-procurement", peer="approval-saas")
    assert verdict(judge(settings), "procure_to_pay", [REQ, call], 2) == (
        "blocked",
        "dependency_error",
        "approval-saas",
    )
    # A later successful step call of the same component clears it.
    ok = ob(3, "budget_approval", kind="Server", service="approval-saas")
    assert verdict(judge(settings), "procure_to_pay", [REQ, call, ok], 4) == ("in_progress", None, None)


def test_a_transformation_failure_fails_on_the_channel_and_wins_over_errors(settings: Settings) -> None:
    log = ob(1, failure=True, error=True, source=LOG, service="supplier-orders")
    call = ob(2, error=True, kind="Client", service="integration-engine", peer="supplier-portal")
    assert verdict(judge(settings), "procure_to_pay", [REQ, log, call], 3) == (
        "failed",
        "transformation_failed",
        "supplier-orders",
    )


def test_an_unhealthy_next_service_blocks_overdue_work_instead_of_a_person(settings: Settings) -> None:
    health = HealthLedger(30.0, 0.2, 3)
    j = judge(settings, health)
    received = [REQ, SENT, ob(2, kind="Consumer", destination="wf.approvals", message_id="m1")]
    for i in range(4):
        health.record(T0 + 20 + i, T0 + 20 + i, ("approval-saas", "erp-procurement"), error=True)
    assert verdict(j, "procure_to_pay", received, 25) == ("blocked", "dependency_error", "approval-saas")
    # 30 s later the errors are out of the health window: a person is awaited again.
    assert verdict(j, "procure_to_pay", received, 60) == ("stalled", "awaiting_approval", "approval-saas")


def test_health_needs_both_the_error_share_and_the_minimum_count() -> None:
    health = HealthLedger(60.0, 0.2, 3)
    for i in range(2):
        health.record(T0 + i, T0 + i, ("x",), error=True)
    assert not health.unhealthy("x", T0 + 10, T0 + 10), "two errors are below the minimum of three"
    health.record(T0 + 3, T0 + 3, ("x",), error=True)
    assert health.unhealthy("x", T0 + 10, T0 + 10)
    for i in range(20):
        health.record(T0 + 4 + i / 10, T0 + 4, ("x",), error=False)
    assert not health.unhealthy("x", T0 + 10, T0 + 10), "3 of 23 calls is 13%, under 20%"
    assert health.unhealthy("x", T0 + 10, T0 + 3.5), "calls not sent yet do not count"


def test_a_step_without_an_error_and_without_a_person_is_unknown(settings: Settings) -> None:
    obs = [ob(0, "roster_published", kind="Server"), ob(1, "roster_mapped")]
    assert verdict(judge(settings), "workforce_sync", obs, 30) == ("stalled", "unknown", "roster_loaded")


def test_telemetry_not_sent_yet_is_not_seen(settings: Settings) -> None:
    late = ob(1, "budget_approval", kind="Server", emitted=40)
    j = judge(settings)
    assert j.expected("procure_to_pay", [REQ, SENT, late], T0 + 30, T0 + 30) is not None
    assert verdict(j, "procure_to_pay", [REQ, SENT, late], 30) == ("blocked", "queue_backlog", "approvals")
    # Once it arrives, the approval (1 s in) counts from its own time: po_created (12 s) is overdue.
    assert verdict(j, "procure_to_pay", [REQ, SENT, late], 41) == ("stalled", "unknown", "po_created")
    assert j.expected("procure_to_pay", [late], T0 + 30, T0 + 30) is None


def test_settled_only_away_from_changes(settings: Settings) -> None:
    j, m = judge(settings), Margins(behind=6, ahead=4, lag=5)
    obs = [REQ, SENT]  # due at 18 s: blocked from then on
    assert not j.settled("procure_to_pay", obs, T0 + 16, m), "the due time is within the margins"
    assert j.settled("procure_to_pay", obs, T0 + 40, m)
    assert j.settled("procure_to_pay", obs, T0 + 5, Margins(behind=2, ahead=2, lag=1))
    just_sent = [REQ, SENT, ob(39, "budget_approval", kind="Server", service="approval-saas")]
    assert not j.settled("procure_to_pay", just_sent, T0 + 40, m), "a step Triage may not have stitched yet"


# -- agreement with the correlator's state machine on random histories ---------------------------


def to_event(o: Observation) -> Event:
    return Event(
        step=o.step,
        at=datetime.fromtimestamp(o.at_ns / 1e9, UTC),
        source=o.source,
        service=o.service,
        trace_id="t",
        span_kind=o.span_kind,
        status="error" if o.error else "ok",
        failure=o.failure,
        detail="",
        peer=o.peer,
        destination=o.destination,
        message_id=o.message_id,
        facility=o.facility,
        value=o.value,
        attributes=o.attributes,
    )


def random_history(rng: random.Random, settings: Settings) -> tuple[str, list[Observation]]:
    workflow = rng.choice(settings.workflows)
    steps = [s.name for s in workflow.steps]
    services = ["erp-procurement", "approval-saas", "ledger-api", "integration-engine", "supplier-portal"]
    queues = ["wf.approvals", "ap.invoices", "inv.replenish", "unconfigured.q"]
    facility = rng.choice([f.id for f in settings.facilities] + [""])
    obs, t, sent = [], 0.0, []
    for _ in range(rng.randrange(1, 9)):
        t += rng.choice([0.0, 0.5, 3.0, 20.0])
        roll = rng.random()
        service = rng.choice(services)
        if roll < 0.35:
            value = rng.choice([0.0, 900.0, 60_000.0, 250_000.0])  # each side of the demo's conditional steps
            obs.append(
                ob(t, rng.choice(steps), kind=rng.choice(["Server", "Internal"]), facility=facility, value=value)
            )
        elif roll < 0.5:
            peer = rng.choice(["", *services])
            kind = rng.choice(["Client", "Server", "Consumer"])
            obs.append(ob(t, rng.choice(["", *steps]), error=True, kind=kind, service=service, peer=peer))
        elif roll < 0.6:
            obs.append(ob(t, failure=True, error=rng.random() < 0.5, source=rng.choice([SPAN, LOG]), service=service))
        elif roll < 0.8:
            mid = rng.choice(["", f"m{len(obs)}"])
            dest = rng.choice(queues)
            sent.append((mid, dest))
            obs.append(ob(t, kind="Producer", service=service, destination=dest, message_id=mid, facility=facility))
        elif sent:
            mid, dest = rng.choice(sent)
            obs.append(ob(t, kind="Consumer", service=service, destination=dest, message_id=mid))
    return workflow.name, obs


def test_truth_agrees_with_the_correlator_on_random_histories(settings: Settings) -> None:
    rng = random.Random(7)
    queues: dict[str, QueueInfo] = {}
    for q in settings.queues:
        for alias in (q.name, q.queue):
            if alias:
                queues[alias] = QueueInfo(q.name, "ok", 1, None)  # it holds the message waiting
    workflows = {w.name: w for w in settings.workflows}
    compared = 0
    for _ in range(3000):
        name, obs = random_history(rng, settings)
        if not obs:
            continue
        sick = {s for s in ("approval-saas", "ledger-api", "erp-workforce", "supplier-portal") if rng.random() < 0.3}
        health = HealthLedger(settings.correlation.health_window, 0.2, 3)
        now = T0 + rng.choice([1.0, 10.0, 30.0, 100.0, 1000.0])
        for component in sick:
            for i in range(3):
                health.record(now - 1 - i, now - 1, (component,), error=True)
        ours = judge(settings, health).expected(name, obs, now, T0 + 10**6)  # the machine sees every event
        assert ours is not None
        ctx = Context(
            datetime.fromtimestamp(now, UTC),
            _criticality(settings, obs),
            {c: Health(3, 3, datetime.fromtimestamp(now - 3, UTC), "down") for c in sick},
            queues,
        )
        theirs = evaluate(workflows[name], [to_event(o) for o in obs], ctx)
        cause = theirs.cause
        assert (ours.state, ours.cause_kind, ours.component) == (
            theirs.state,
            cause.kind if cause else None,
            cause.component if cause else None,
        ), f"{name} at +{now - T0:.0f}s: {obs}"
        compared += 1
    assert compared > 2500


def _criticality(settings: Settings, obs: list[Observation]) -> str:
    """As the correlator picks it: the facility of the earliest event that names one."""
    facility = next((o.facility for o in sorted(obs, key=lambda o: o.at_ns) if o.facility), "")
    found = settings.facility(facility)
    return found.criticality if found else "normal"
