"""FastAPI dependencies: the runtime and its store, injected into routers."""

from __future__ import annotations

from fastapi import Request

from app.runtime import Runtime
from triage.store import Store


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def get_store(request: Request) -> Store:
    return get_runtime(request).store
