"""GET /api/v1/queues (every queue's current state) and POST /api/v1/queues/samples (push)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import get_runtime
from app.runtime import Runtime
from collector import PUSH_SOURCE, QueueSample, QueueState, current_queue_states, write_samples
from triage.times import EARLIEST

router = APIRouter(tags=["queues"])
MAX_PUSHED = 1000
_FUTURE_SLACK = timedelta(minutes=5)


class PushedSample(BaseModel):
    """One report about a queue Triage cannot poll itself."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="queue name, as spans' destination names it")
    system: str = Field("push", min_length=1, max_length=50, description="e.g. ibmmq, sqs, mirth")
    # Bounds are the store's columns (Int64, Int32, finite Float64): a larger value is a 422, not a failed insert.
    backlog: int = Field(ge=0, le=2**63 - 1, description="messages waiting or in flight")
    consumers: int | None = Field(None, ge=0, le=2**31 - 1)
    unacked: int | None = Field(
        None, ge=0, le=2**63 - 1, description="delivered, not yet acknowledged (part of backlog)"
    )
    oldest_age_seconds: float | None = Field(None, ge=0, allow_inf_nan=False)
    rate_in: float | None = Field(None, ge=0, allow_inf_nan=False, description="messages/s arriving")
    rate_out: float | None = Field(None, ge=0, allow_inf_nan=False, description="messages/s consumed")
    destination: str | None = Field(None, max_length=200, description="queue/topic name, if not `name`")
    time: datetime | None = Field(None, description="when measured (RFC 3339; default: now, UTC)")


class PushAccepted(BaseModel):
    accepted: int


_PUSH_EXAMPLE = [{"name": "ibmmq.po.inbound", "system": "ibmmq", "backlog": 42, "consumers": 1}]


@router.get("/queues", response_model=list[QueueState])
def list_queues(runtime: Annotated[Runtime, Depends(get_runtime)]) -> list[QueueState]:
    """Every polled, exporter-discovered and pushed queue with its status, by name."""
    return current_queue_states(runtime.store, runtime.settings)


def _error(index: int, field: str, message: str, given: Any) -> dict[str, Any]:
    """One item of a 422 body, shaped like FastAPI's own validation errors."""
    return {"loc": ("body", index, field), "msg": message, "type": "value_error", "input": given}


def _checked(samples: list[PushedSample], runtime: Runtime) -> list[QueueSample]:
    """The pushed samples as queue samples; 422 naming the item and field for what pydantic cannot check."""
    polled = {q.name: q.kind for q in runtime.settings.queues if q.kind != "push"}
    now = datetime.now(UTC)
    errors = []
    converted = []
    for i, s in enumerate(samples):
        at = (s.time or now) if (s.time or now).tzinfo else (s.time or now).replace(tzinfo=UTC)
        if s.name in polled:
            message = f"queue {s.name!r} is polled (kind {polled[s.name]}); push under another name"
            errors.append(_error(i, "name", message, s.name))
        if at > now + _FUTURE_SLACK:
            message = f"time {at.isoformat()} is in the future; send UTC or an explicit offset"
            errors.append(_error(i, "time", message, str(s.time)))
        elif at < EARLIEST:
            message = f"time {at.isoformat()} is outside the times Triage stores (from {EARLIEST:%Y-%m-%d})"
            errors.append(_error(i, "time", message, str(s.time)))
        converted.append(
            QueueSample(
                queue=s.name,
                system=s.system,
                time=at,
                backlog=s.backlog,
                consumers=s.consumers,
                unacked=s.unacked,
                oldest_age_seconds=s.oldest_age_seconds,
                rate_in=s.rate_in,
                rate_out=s.rate_out,
                source=PUSH_SOURCE,
                destination=s.destination or s.name,
            )
        )
    if errors:
        raise RequestValidationError(errors)
    return converted


@router.post("/queues/samples", status_code=202, response_model=PushAccepted)
def push_samples(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    samples: Annotated[
        list[PushedSample],
        Body(min_length=1, max_length=MAX_PUSHED, openapi_examples={"one": {"value": _PUSH_EXAMPLE}}),
    ],
) -> PushAccepted:
    """Store samples for queues Triage cannot poll; they join GET /api/v1/queues at once."""
    write_samples(runtime.store, _checked(samples, runtime))
    return PushAccepted(accepted=len(samples))
