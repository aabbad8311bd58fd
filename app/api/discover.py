"""GET /api/v1/discover: a workflow proposed from the raw telemetry that carries a business key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from app.api.deps import get_runtime
from app.runtime import Runtime
from correlator import DiscoveryEvidence, NothingToDiscover, discover
from triage.durations import parse_duration
from triage.settings import KeyFormat
from triage.times import storable

router = APIRouter(tags=["discovery"])


class DiscoveryAnswer(BaseModel):
    workflow: dict[str, Any] = Field(description="the proposal, as a `workflows:` entry of the configuration")
    yaml: str = Field(description="`workflows: [the proposal]`, with the evidence as comments; check-config accepts it")
    evidence: DiscoveryEvidence


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise) or a relative one (-90m, -6h, -7d); ValueError saying
    which forms are accepted otherwise."""
    now = now or datetime.now(UTC)
    text = text.strip()
    try:
        if text.startswith("-") and text[1:2].isdigit():
            return storable(now - timedelta(seconds=parse_duration(text[1:])))
        return storable(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError) as exc:
        raise ValueError(
            f"{_printable(text[:60])!r} is not a time: give -7d, -6h or 2026-11-24T09:00:00Z ({exc})"
        ) from exc


def _time(text: str, name: str, now: datetime) -> datetime:
    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from exc


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@router.get(
    "/discover",
    response_model=DiscoveryAnswer,
    responses={422: {"description": "no key named, a time that is not one, or nothing in the window carries the key"}},
)
def discover_workflow(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    key: Annotated[
        str,
        Query(
            description="the attribute carrying the business key; several names comma-separated, in the order "
            "a span is looked at: erp.po_number,po.number"
        ),
    ],  # fmt: skip
    since: Annotated[str, Query(description="from: -7d, -6h or an ISO 8601 time")] = "-7d",
    until: Annotated[str | None, Query(description="to (default now), same forms")] = None,
    value: Annotated[str | None, Query(description="the attribute with the money at stake (else found)")] = None,
    name: Annotated[str | None, Query(max_length=100, description="the proposed workflow's name")] = None,
    limit: Annotated[int, Query(ge=10, le=100_000, description="transactions read, the most recent first")] = 10_000,
) -> DiscoveryAnswer:
    """Propose a workflow from the spans and logs that carry `key`: steps in their usual order with how many
    transactions reached each and the wait before it, optional, conditional (`when:`), alternative
    (`one_of`) and human steps, SLAs per facility criticality (p95 of the waits × 1.5), with the evidence."""
    settings = runtime.settings
    now = datetime.now(UTC)
    start = _time(since, "since", now)
    end = _time(until, "until", now) if until else now
    if end <= start:
        raise HTTPException(422, "`until` must be after `since`")
    names = [n.strip() for n in key.split(",") if n.strip()]
    known = next((w.key_format for w in settings.workflows if set(w.keys) & set(names)), None)
    try:
        found = discover(
            runtime.store,
            names,
            start,
            end,
            value=value.strip() or None if value else None,
            facilities=settings.facilities,
            name=name.strip() or None if name else None,
            key_format=known or KeyFormat(),
            hops=settings.correlation.hop_rounds,
            limit=limit,
        )
    except NothingToDiscover as exc:
        raise HTTPException(422, _printable(str(exc))) from exc
    return DiscoveryAnswer(workflow=found.workflow, yaml=found.yaml, evidence=found.evidence)
