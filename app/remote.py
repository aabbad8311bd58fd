"""Asking a running Triage server: the embedded store allows one process, so a command that needs the
store while a server holds it (replay, report) goes through that server's API."""

from __future__ import annotations

from typing import Any

import httpx

from triage.errors import TriageError
from triage.settings import Settings


def api_url(settings: Settings, given: str | None = None) -> str:
    """The API to ask: --api when given, else the configured host and port."""
    return given or f"http://{settings.host}:{settings.port}"


def answers(api: str) -> bool:
    """True when a Triage server is up at `api`."""
    try:
        return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ask(
    api: str, method: str, path: str, settings: Settings, what: str, timeout: float, **kwargs: Any
) -> httpx.Response:
    """One request to the server with the configured key; TriageError says what failed and what to do."""
    headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
    try:
        response = httpx.request(method, f"{api}{path}", headers=headers, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise TriageError(f"cannot reach the Triage server at {api}: {exc}. Start it, or pass --api URL") from exc
    if response.status_code == 404 and path.startswith("/dashboards"):
        raise TriageError(f"the server at {api} does not serve {path}; is it a Triage server with dashboards?")
    if response.status_code != 200:
        raise TriageError(f"the server at {api} refused the {what} ({response.status_code}): {response.text[:300]}")
    return response
