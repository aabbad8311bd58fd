"""Alerts, alert rules, deliveries and silences: GET /api/v1/alerts, POST/GET/DELETE /api/v1/silences."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

import alerts
from app.api.access import actor
from app.api.deps import get_runtime, get_store
from app.runtime import Runtime
from triage import audit
from triage.errors import ConfigError
from triage.store import Store

router = APIRouter(tags=["alerts"])
StateFilter = Literal["pending", "firing", "resolved", "active", "all"]
_STATES = {
    "pending": ["pending"],
    "firing": ["firing"],
    "resolved": ["resolved"],
    "active": ["pending", "firing"],
    "all": ["pending", "firing", "resolved"],
}


class AlertItem(BaseModel):
    fingerprint: str
    rule: str
    state: str
    silenced: bool
    silenced_by: list[str]
    severity: str
    summary: str
    labels: dict[str, str]
    annotations: dict[str, str]
    count: int
    value: float
    active_since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    dashboard_url: str
    transactions: list[str]


class AlertEvent(BaseModel):
    at: datetime
    kind: str
    channel: str
    delivery_id: str
    detail: str


class AlertDetail(AlertItem):
    events: list[AlertEvent]


class RuleInfo(BaseModel):
    name: str
    source: str
    kind: str
    group_by: list[str]
    rule: dict[str, Any]


class DeadLetter(BaseModel):
    at: datetime
    delivery_id: str
    channel: str
    target: str
    fingerprint: str
    rule: str
    status: str
    attempts: int
    last_error: str


class Target(BaseModel):
    channel: str
    target: str
    sent: int
    failed_attempts: int
    dead_letters: int
    retrying: int
    last_error: str
    last_error_at: datetime | None
    last_success_at: datetime | None


class Deliveries(BaseModel):
    evaluator_running: bool
    last_evaluation_at: datetime | None
    targets: list[Target]
    dead_letters: list[DeadLetter]


def _item(a: alerts.Alert, silences: list[alerts.Silence], now: datetime) -> AlertItem:
    by = (
        [s.id for s in silences if s.state_at(now) == "active" and s.matches(a.labels)]
        if a.status != "resolved"
        else []
    )
    return AlertItem(
        fingerprint=a.fingerprint,
        rule=a.rule,
        state=a.status,
        silenced=bool(by),
        silenced_by=by,
        severity=a.severity,
        summary=a.annotations.get("summary", ""),
        labels=a.labels,
        annotations=a.annotations,
        count=a.count,
        value=a.value,
        active_since=a.active_since,
        fired_at=a.fired_at,
        resolved_at=a.resolved_at,
        updated_at=a.updated_at,
        dashboard_url=a.dashboard_url,
        transactions=a.keys,
    )


def _wake(runtime: Runtime) -> None:
    evaluator = runtime.evaluator
    if evaluator is not None:
        evaluator.wake()


@router.get("/alerts", response_model=list[AlertItem])
def list_alerts(
    store: Annotated[Store, Depends(get_store)],
    state: StateFilter = "active",
    rule: str = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[AlertItem]:
    """Alerts, newest change first: pending and firing by default; `state=resolved` or `all` for history."""
    now = datetime.now(UTC)
    silences = alerts.list_silences(store, now)
    return [_item(a, silences, now) for a in alerts.list_alerts(store, _STATES[state], rule, limit)]


@router.get("/alerts/rules", response_model=list[RuleInfo])
def list_rules(runtime: Annotated[Runtime, Depends(get_runtime)]) -> list[RuleInfo]:
    """Rules in force: config, rules_file, packs and those created through this API."""
    try:
        loaded = alerts.configured_rules(runtime.settings)
    except ConfigError as exc:
        raise HTTPException(500, f"the configured alert rules do not load: {exc}") from exc
    loaded += [alerts.LoadedRule(r, "api") for r in alerts.api_rules(runtime.store)]
    return [
        RuleInfo(
            name=r.rule.name,
            source=r.source,
            kind=r.rule.kind,
            group_by=r.rule.grouping,
            rule=r.rule.model_dump(by_alias=True, exclude_none=True),
        )
        for r in loaded
    ]


@router.post("/alerts/rules", response_model=RuleInfo, status_code=201, responses={409: {}, 422: {}})
def create_rule(
    http: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"name": "po_blocked", "when": {"state": ["blocked"], "criticality": ["critical"]}}]),
    ],
) -> RuleInfo:
    """Create or replace an API rule (same shape as in YAML); errors name the field."""
    try:
        rule = alerts.rule_from_api(body)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from exc
    taken = {r.rule.name: r.source for r in alerts.configured_rules(runtime.settings)}
    if rule.name in taken:
        raise HTTPException(409, f"rule {rule.name!r} is defined in {taken[rule.name]}; pick another name")
    alerts.save_api_rule(runtime.store, rule)
    dumped = rule.model_dump(by_alias=True, exclude_none=True)
    audit.record(runtime.store, actor(http), "rule.save", rule.name, {"rule": dumped})
    _wake(runtime)
    return RuleInfo(name=rule.name, source="api", kind=rule.kind, group_by=rule.grouping, rule=dumped)


@router.delete("/alerts/rules/{name}", status_code=204, responses={404: {}, 409: {}})
def delete_rule(http: Request, runtime: Annotated[Runtime, Depends(get_runtime)], name: str) -> Response:
    """Delete an API rule; its alerts resolve at the next evaluation."""
    taken = {r.rule.name: r.source for r in alerts.configured_rules(runtime.settings)}
    if name in taken:
        raise HTTPException(409, f"rule {name!r} comes from {taken[name]}; remove it there")
    if not alerts.delete_api_rule(runtime.store, name):
        raise HTTPException(404, f"no API rule named {name!r}")
    audit.record(runtime.store, actor(http), "rule.delete", name)
    _wake(runtime)
    return Response(status_code=204)


@router.get("/alerts/rules/prometheus", response_class=Response)
def export_rules(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Response:
    """Every rule (API ones included) as Prometheus alerting rules over the /metrics gauges."""
    rules = [r.rule for r in alerts.configured_rules(runtime.settings)] + alerts.api_rules(runtime.store)
    text, _ = alerts.export_prometheus(rules, runtime.settings)
    return Response(text, media_type="application/yaml")


@router.get("/alerts/deliveries", response_model=Deliveries)
def deliveries(
    runtime: Annotated[Runtime, Depends(get_runtime)], limit: Annotated[int, Query(ge=1, le=10000)] = 100
) -> Deliveries:
    """Per-target delivery counts and last errors (this process), and the dead letters (stored)."""
    evaluator = runtime.evaluator
    targets = [Target(**t.__dict__) for t in evaluator.targets()] if evaluator else []
    dead = [DeadLetter(**d) for d in alerts.dead_letters(runtime.store, limit)]
    last = evaluator.last.at if evaluator is not None and evaluator.last is not None else None
    return Deliveries(
        evaluator_running=evaluator is not None, last_evaluation_at=last, targets=targets, dead_letters=dead
    )


@router.get("/alerts/{fingerprint}", response_model=AlertDetail, responses={404: {}})
def get_alert(store: Annotated[Store, Depends(get_store)], fingerprint: str) -> AlertDetail:
    """One alert with its history (transitions and deliveries)."""
    alert = alerts.get_alert(store, fingerprint)
    if alert is None:
        raise HTTPException(404, f"no alert with fingerprint {fingerprint!r}")
    now = datetime.now(UTC)
    events = [AlertEvent(**asdict(e)) for e in alerts.alert_events(store, fingerprint)]
    return AlertDetail(**_item(alert, alerts.list_silences(store, now), now).model_dump(), events=events)


@router.post("/silences", response_model=alerts.Silence, status_code=201)
def create_silence(
    http: Request, runtime: Annotated[Runtime, Depends(get_runtime)], request: alerts.SilenceRequest
) -> alerts.Silence:
    """Silence the alerts whose labels match every matcher, from starts_at (default now) to ends_at."""
    if request.created_by == "api":  # not given: the signed-in identity, as the audit log names it
        request = request.model_copy(update={"created_by": actor(http)})
    try:
        silence = alerts.create_silence(runtime.store, request)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    detail = {
        "matchers": [m.model_dump() for m in silence.matchers],
        "ends_at": silence.ends_at,
        "comment": silence.comment,
    }
    audit.record(runtime.store, actor(http), "silence.create", silence.id, detail)
    _wake(runtime)
    return silence


@router.get("/silences", response_model=list[alerts.Silence])
def list_silences(
    store: Annotated[Store, Depends(get_store)], state: Literal["", "active", "pending", "expired"] = ""
) -> list[alerts.Silence]:
    """Every silence, newest first; `state=active` for those in effect."""
    return [s for s in alerts.list_silences(store) if not state or s.state == state]


@router.get("/silences/{silence_id}", response_model=alerts.Silence, responses={404: {}})
def get_silence(store: Annotated[Store, Depends(get_store)], silence_id: str) -> alerts.Silence:
    silence = alerts.get_silence(store, silence_id)
    if silence is None:
        raise HTTPException(404, f"no silence {silence_id!r}")
    return silence


@router.delete("/silences/{silence_id}", response_model=alerts.Silence, responses={404: {}})
def expire_silence(http: Request, runtime: Annotated[Runtime, Depends(get_runtime)], silence_id: str) -> alerts.Silence:
    """Expire a silence now; it stays listed as expired. Alerts it held back notify at the next evaluation."""
    silence = alerts.expire_silence(runtime.store, silence_id)
    if silence is None:
        raise HTTPException(404, f"no silence {silence_id!r}")
    audit.record(runtime.store, actor(http), "silence.expire", silence_id)
    _wake(runtime)
    return silence
