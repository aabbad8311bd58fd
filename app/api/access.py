"""Who may do what on the main port: every request is identified (API key, trusted proxy's user header,
or the dashboards' session cookie) and checked against the scope its method and path need.

- `ingest`: POST /api/v1/logs/raw, POST /api/v1/queues/samples (and the OTLP port's endpoints);
- `read`: every GET, and the dashboards (whose callbacks are POSTs);
- `admin`: every other write (silences, alert rules, replays), and reading the audit log.

The dashboards sign in at /dashboards/login: the key is posted once, in a form, and exchanged for a
session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) that names the user, not the key.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from triage.auth import ApiKeys, Identity

SESSION_COOKIE = "triage_session"
LOGIN_PATH = "/dashboards/login"
OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc", LOGIN_PATH)
INGEST_PATHS = ("/api/v1/logs/raw", "/api/v1/queues/samples")
ADMIN_READS = ("/api/v1/audit",)


def required_scope(method: str, path: str) -> str:
    if method == "POST" and path in INGEST_PATHS:
        return "ingest"
    if path in ADMIN_READS:
        return "admin"
    if method in ("GET", "HEAD", "OPTIONS") or path.startswith("/dashboards"):
        return "read"
    return "admin"


def identity_of(request: Request) -> Identity | None:
    """The identity the access check found for this request (None when keys are off and nothing was checked)."""
    return getattr(request.state, "identity", None)


def actor(request: Request) -> str:
    """How the audit log names who made this request."""
    found = identity_of(request)
    return found.name if found else "anonymous"


def install(app: FastAPI, keys: ApiKeys) -> None:
    """The access middleware and the dashboards' login and logout routes."""

    @app.middleware("http")
    async def check_access(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if path.startswith(OPEN_PATHS):
            return await call_next(request)
        client = request.client.host if request.client else None
        found = keys.identify(request.headers, client, request.cookies.get(SESSION_COOKIE, ""))
        scope = required_scope(request.method, path)
        if found is not None and found.may(scope):
            request.state.identity = found
            return await call_next(request)
        if found is not None:
            return JSONResponse({"detail": f"{found.name} may not do this: it needs the {scope!r} scope"}, 403)
        if path.startswith("/dashboards") and request.method == "GET":
            return RedirectResponse(LOGIN_PATH, status_code=303)
        detail = keys.CHALLENGE + " (dashboards: sign in at /dashboards/login)"
        return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.get(LOGIN_PATH, include_in_schema=False)
    def login_page() -> HTMLResponse:
        return HTMLResponse(_login_form(""))

    @app.post(LOGIN_PATH, include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        given = (form.get("key") or [""])[0].strip()
        found = keys.identify({"x-api-key": given}) if given else None
        if found is None or not found.may("read"):
            return HTMLResponse(_login_form("That key is not accepted for the dashboards."), status_code=401)
        response = RedirectResponse("/dashboards/", status_code=303)
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(
            SESSION_COOKIE,
            keys.session_for(found),
            max_age=int(keys.session_seconds),
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
        return response

    @app.post("/dashboards/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _login_form(error: str) -> str:
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Triage — sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:12vh auto;color:#1f2937}}
input{{width:100%;padding:.5rem;margin:.5rem 0;font-size:1rem}}button{{padding:.5rem 1rem;font-size:1rem}}
.error{{color:#b91c1c}}</style></head>
<body><h1>Triage</h1><p>Sign in with an API key that has the <code>read</code> scope.</p>{message}
<form method="post" action="{LOGIN_PATH}"><label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form></body></html>"""
