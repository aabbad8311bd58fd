"""The JSON API under /api/v1/, health endpoints and /metrics, assembled into one FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from triage.api import health, logs, queues, traces, transactions
from triage.runtime import Runtime


def create_api_app(runtime: Runtime) -> FastAPI:
    """The main-port app: API, health, metrics."""
    app = FastAPI(
        title="Triage",
        description="Business-transaction monitoring for healthcare ERP middleware.",
        version="0.1.0",
    )
    app.state.runtime = runtime

    @app.middleware("http")
    async def require_api_key(request: Request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path
        open_paths = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")
        if runtime.keys.enabled and not path.startswith(open_paths) and not runtime.keys.allows(request.headers):
            return JSONResponse(
                {"detail": runtime.keys.CHALLENGE}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(traces.router, prefix="/api/v1")
    app.include_router(queues.router, prefix="/api/v1")
    app.include_router(logs.router, prefix="/api/v1")
    app.include_router(transactions.router, prefix="/api/v1")
    return app
