"""Serving the dashboards inside the main FastAPI app: the Dash (Flask) app through WSGI under /dashboards/,
and the report document at GET /dashboards/report."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount

from dashboards.context import ENVIRON_KEY, DashboardContext
from triage.settings import Settings
from triage.store import Store

MOUNT_PATH = "/dashboards"
REPORT_PATH = "/dashboards/report"


def _wsgi_with_context(
    app: Callable[..., Iterable[bytes]], context: DashboardContext
) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[ENVIRON_KEY] = context
        return app(environ, start_response)

    return wsgi


def mount_dashboards(app: FastAPI, store: Store, settings: Settings) -> None:
    """Add the dashboards under /dashboards/ and the report endpoint to `app` (once; later calls do nothing)."""
    if any(isinstance(r, Mount) and r.path == MOUNT_PATH for r in app.router.routes):
        return
    from a2wsgi import WSGIMiddleware

    from dashboards.app import dash_app

    def report(
        period: str = Query("7d", description="how far back: 24h, 7d, 14d, 30d"),
        format: Literal["html", "pdf"] = Query("html", description="html or pdf"),
    ) -> Response:
        """The executive workflow-stall report over `period`, compared with the period before."""
        from dashboards.report import ReportError, build_report, parse_period, render

        try:
            chosen = parse_period(period)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        report = build_report(store, settings, chosen)
        try:
            body = render(report, format)
        except ReportError as exc:
            raise HTTPException(503, str(exc)) from exc
        if format == "pdf":
            name = f"triage-report-{chosen}.pdf"
            return Response(
                body, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
            )
        return HTMLResponse(body)

    app.add_api_route(REPORT_PATH, report, methods=["GET"], tags=["dashboards"], response_class=Response)
    app.add_api_route(MOUNT_PATH, lambda: RedirectResponse(MOUNT_PATH + "/"), methods=["GET"], include_in_schema=False)
    server = dash_app().server
    app.mount(MOUNT_PATH, WSGIMiddleware(_wsgi_with_context(server, DashboardContext(store, settings)), workers=8))  # type: ignore[arg-type]
