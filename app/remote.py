"""Asking a running Triage server: the embedded store allows one process, so a command that needs the
store while a server holds it (replay, report) goes through that server's API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from triage.errors import TriageError
from triage.settings import Settings
from triage.store import Store

ADDRESS_FILE = "triage-server.json"


def address_file(settings: Settings) -> Path | None:
    """Where a server holding an embedded store leaves its API address (beside the data); None for a server DSN."""
    target = Store.from_settings(settings).target
    return Path(target.path) / ADDRESS_FILE if target.embedded else None


def leave_address(settings: Settings, api: str) -> Path | None:
    """Write this server's API address beside its embedded store, so that `report` and `replay` find it."""
    path = address_file(settings)
    if path is None:
        return None
    body = {"api": api, "pid": os.getpid(), "database": Store.from_settings(settings).target.database}
    path.write_text(json.dumps(body) + "\n", "utf-8")
    return path


def api_url(settings: Settings, given: str | None = None) -> str:
    """The API to ask: --api when given, else the address a running server left beside the store's data,
    else the configured host and port."""
    if given:
        return given
    path = address_file(settings)
    try:
        found = json.loads(path.read_text("utf-8")) if path else {}
        os.kill(int(found["pid"]), 0)  # a server that died leaves a stale file
        if found["database"] == Store.from_settings(settings).target.database:
            return str(found["api"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"http://{settings.host}:{settings.port}"


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
    # Replays need the admin scope, reports read: the first key with admin, else any key with read.
    key = settings.key_with("admin") or settings.key_with("read")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.request(method, f"{api}{path}", headers=headers, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise TriageError(f"cannot reach the Triage server at {api}: {exc}. Start it, or pass --api URL") from exc
    if response.status_code == 404 and path.startswith("/dashboards"):
        raise TriageError(f"the server at {api} does not serve {path}; is it a Triage server with dashboards?")
    if response.status_code != 200:
        raise TriageError(f"the server at {api} refused the {what} ({response.status_code}): {response.text[:300]}")
    return response
