"""The JSON API under /api/v1/, health endpoints and /metrics, assembled into one FastAPI app."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from app.api import access, alerts, audit, discover, health, leases, logs, queues, traces, transactions
from app.runtime import Runtime
from dashboards import mount_dashboards
from triage.vocabulary import Role


def create_api_app(runtime: Runtime) -> FastAPI:
    """The main-port app: health and metrics, and the API and dashboards where the process has those roles."""
    app = FastAPI(
        title="Triage",
        description="Business-transaction monitoring for healthcare ERP middleware.",
        version="0.1.0",
    )
    app.state.runtime = runtime

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # As FastAPI's own 422, but ASCII-escaped: an input echoed back with a lone surrogate
        # (invalid UTF-8 when encoded) would otherwise turn the 422 into a 500.
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    access.install(app, runtime.keys)
    # Every process answers health and metrics; the rest follows its roles.
    app.include_router(health.router)
    if runtime.has(Role.API) or runtime.has(Role.COLLECTOR):  # raw log lines and queue samples are ingest
        app.include_router(queues.router, prefix="/api/v1")
        app.include_router(logs.router, prefix="/api/v1")
    if runtime.has(Role.API):
        app.include_router(traces.router, prefix="/api/v1")
        app.include_router(transactions.router, prefix="/api/v1")
        app.include_router(alerts.router, prefix="/api/v1")
        app.include_router(audit.router, prefix="/api/v1")
        app.include_router(discover.router, prefix="/api/v1")
        app.include_router(leases.router, prefix="/api/v1")
    if runtime.has(Role.DASHBOARDS):
        mount_dashboards(app, runtime.store, runtime.settings)
    return app
