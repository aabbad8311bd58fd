"""The columnar fast path gives the reference machine's verdicts: on seeded random workflows (lines,
optional and conditional steps, gateways, human steps, SLAs per tier) and random events (progress,
errors, failures, messages, ties in time), judged many to one set of columns as the engine judges them.
The scenario tests check the same inside the engine (tests/correlator/conftest.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from correlator.columnar import EventColumns, FlowPlan, judge
from correlator.machine import Context, Event, Health, QueueInfo, evaluate
from correlator.verdicts import transaction_row
from triage.settings import Workflow

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TIERS = ("critical", "high", "normal")
SERVICES = ("erp", "approval-saas", "edi-gateway", "mirth")
QUEUES = ("wf.approvals", "erp.po.out")


def _step(rng: random.Random, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "match": {"service": rng.choice(SERVICES)}}
    if rng.random() < 0.7:
        out["sla"] = {tier: f"{rng.randint(1, 90)}m" for tier in TIERS if rng.random() < 0.6}
    out["human"] = rng.random() < 0.3
    out["optional"] = rng.random() < 0.15
    if rng.random() < 0.2:
        when: dict[str, Any] = {}
        if rng.random() < 0.6:
            when["min_value"] = rng.choice([1000, 50_000, 250_000])
        if not when or rng.random() < 0.5:
            when["attributes"] = {"order.type": rng.choice(["capital", "stock"])}
        out["when"] = when
    return out


def random_workflow(rng: random.Random) -> Workflow:
    names = iter(f"s{i}" for i in range(100))
    flow: list[Any] = [{"name": next(names), "match": {"span_name": "start"}}]
    for _ in range(rng.randint(1, 5)):
        if rng.random() < 0.25:
            branches = [[_step(rng, next(names)) for _ in range(rng.randint(1, 2))] for _ in range(rng.randint(2, 3))]
            flow.append({"one_of": [b if len(b) > 1 else b[0] for b in branches]})
        else:
            flow.append(_step(rng, next(names)))
    last = _step(rng, next(names))
    last["optional"] = False
    flow.append(last)
    terminal = [last["name"]] if rng.random() < 0.9 else []
    return Workflow.model_validate({"name": "wf", "keys": ["k"], "steps": flow, "terminal": terminal})


def random_events(rng: random.Random, workflow: Workflow) -> list[Event]:
    steps = [s.name for s in workflow.steps]
    events = []
    for n in range(rng.randint(1, 9)):
        kind = rng.choice(["Server", "Client", "Internal", "Producer", "Consumer"])
        events.append(
            Event(
                step=rng.choice([*steps, "", ""]) if n else steps[0],
                at=T0 + timedelta(minutes=rng.choice([0, 5, 5, 10, 30, 60, 61, 120])),
                source=rng.choice(["span", "span", "log"]),
                service=rng.choice(SERVICES),
                trace_id=rng.choice(["t1", "t2", ""]),
                span_kind=kind,
                status=rng.choice(["ok", "ok", "ok", "error"]),
                failure=rng.random() < 0.08,
                detail=rng.choice(["", "HTTP 503", "mapping error: invalid"]),
                peer=rng.choice(["", "", "approval-saas"]),
                destination=rng.choice(["", *QUEUES]) if kind in ("Producer", "Consumer") else "",
                message_id=rng.choice(["", "m1", "m2"]) if kind in ("Producer", "Consumer") else "",
                facility=rng.choice(["", "STM-ICU", "NTH-CLINIC"]),
                value=float(rng.choice([0, 500, 60_000, 300_000])),
                attributes={"order.type": rng.choice(["capital", "stock"])} if rng.random() < 0.4 else {},
                received=T0 + timedelta(minutes=rng.choice([0, 30, 200])),
            )
        )
    return events


def random_context(rng: random.Random) -> Context:
    sick = Health(calls=10, errors=rng.choice([0, 2, 5, 9]), first_error=T0, last_detail="HTTP 503")
    queue = QueueInfo(rng.choice(QUEUES), rng.choice(["ok", "stalled"]), rng.randint(0, 2000), 60.0)
    return Context(
        now=T0 + timedelta(minutes=rng.choice([1, 20, 45, 70, 100, 200, 600])),
        criticality=rng.choice(TIERS),
        health={rng.choice(SERVICES): sick} if rng.random() < 0.5 else {},
        queues={queue.name: queue} if rng.random() < 0.5 else {},
    )


def test_random_transactions_get_the_reference_verdicts() -> None:
    rng = random.Random(14)
    judged = 0
    for _ in range(150):
        workflow = random_workflow(rng)
        plan = FlowPlan.of(workflow)  # one plan for all the workflow's transactions: its answers are cached
        transactions = {("wf", f"K{i}"): random_events(rng, workflow) for i in range(40)}
        cols = EventColumns.of(transactions)
        for _ in range(3):
            ctx = random_context(rng)
            for workflow_name, key, lo, hi in cols.transactions():
                reference = evaluate(workflow, transactions[(workflow_name, key)], ctx)
                fast = judge(plan, cols, lo, hi, ctx)
                assert fast == reference, (workflow.model_dump(), transactions[(workflow_name, key)], ctx)
                row = transaction_row(workflow, key, fast, "", ctx.criticality, ctx.now, 1.0, 1)
                sla = plan.sla(fast.next_step, ctx.criticality)
                assert transaction_row(workflow, key, fast, "", ctx.criticality, ctx.now, 1.0, 1, None, sla) == row
                judged += 1
    assert judged == 150 * 40 * 3


def test_the_random_cases_reach_every_state_and_cause() -> None:
    """The generator is worth its name: each state and cause kind turns up."""
    rng = random.Random(14)
    seen = set()
    for _ in range(60):
        workflow = random_workflow(rng)
        for _ in range(20):
            v = evaluate(workflow, random_events(rng, workflow), random_context(rng))
            seen.add((v.state, v.cause.kind if v.cause else None))
    states = {s for s, _ in seen}
    kinds = {k for _, k in seen}
    assert states == {"in_progress", "completed", "stalled", "blocked", "failed"}
    assert kinds >= {None, "queue_backlog", "dependency_error", "transformation_failed", "awaiting_approval", "unknown"}


def test_columns_group_transactions_and_keep_time_order() -> None:
    e = random_events(random.Random(1), random_workflow(random.Random(1)))
    cols = EventColumns.of({("wf", "A"): e, ("wf", "B"): e[:1], ("other", "B"): e[:2]})
    spans = list(cols.transactions())
    assert [(w, k, hi - lo) for w, k, lo, hi in spans] == [("wf", "A", len(e)), ("wf", "B", 1), ("other", "B", 2)]
    assert cols.events(0, len(e)) == sorted(e, key=lambda x: x.at)
