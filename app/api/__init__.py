"""The JSON API under /api/v1/, health endpoints and /metrics, assembled into one FastAPI app."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from app.api import alerts, health, logs, queues, traces, transactions
from app.runtime import Runtime
from dashboards import mount_dashboards

KEY_COOKIE = "triage_key"


def create_api_app(runtime: Runtime) -> FastAPI:
    """The main-port app: API, health, metrics."""
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

    @app.middleware("http")
    async def require_api_key(request: Request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path
        open_paths = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")
        if not runtime.keys.enabled or path.startswith(open_paths) or runtime.keys.allows(request.headers):
            return await call_next(request)
        # Browsers cannot send a bearer key: dashboards also take it once as ?key=, kept in a cookie.
        if path.startswith("/dashboards"):
            given = request.query_params.get("key") or request.cookies.get(KEY_COOKIE, "")
            if given and runtime.keys.allows({"x-api-key": given}):
                response = await call_next(request)
                if request.query_params.get("key"):
                    response.set_cookie(KEY_COOKIE, given, httponly=True, samesite="strict")
                return response
        return JSONResponse(
            {"detail": runtime.keys.CHALLENGE + " (dashboards: open /dashboards/?key=<key> once)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    app.include_router(health.router)
    app.include_router(traces.router, prefix="/api/v1")
    app.include_router(queues.router, prefix="/api/v1")
    app.include_router(logs.router, prefix="/api/v1")
    app.include_router(transactions.router, prefix="/api/v1")
    app.include_router(alerts.router, prefix="/api/v1")

    mount_dashboards(app, runtime.store, runtime.settings)
    return app
