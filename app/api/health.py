"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.api.deps import get_runtime
from app.runtime import Runtime

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    store: str
    store_reachable: bool
    pending_migrations: list[str]
    buffered_rows: int
    last_write_error: str
    failing: list[str]  # background tasks that fail cycle after cycle, with their last error


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(response: Response, runtime: Annotated[Runtime, Depends(get_runtime)]) -> Readiness:
    """Ready when the store answers, every migration is applied and no background task keeps failing."""
    reachable = runtime.store.ping()
    pending = runtime.store.pending_migrations() if reachable else []
    failing = runtime.failing_tasks()
    ready = reachable and not pending and not failing
    if not ready:
        response.status_code = 503
    return Readiness(
        status="ready" if ready else "not_ready",
        store=runtime.store.target.describe(),
        store_reachable=reachable,
        pending_migrations=pending,
        buffered_rows=runtime.pipeline.buffered_rows,
        last_write_error=runtime.pipeline.last_error,
        failing=failing,
    )


@router.get("/metrics", response_class=Response, include_in_schema=True)
def prometheus_metrics() -> Response:
    """Self-metrics and business gauges in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
