"""The audit log: who changed silences and alert rules and ran replays (admin scope)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import get_store
from triage import audit
from triage.store import Store
from triage.times import StoreTime

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=list[audit.AuditEntry])
def audit_log(
    store: Annotated[Store, Depends(get_store)],
    since: StoreTime | None = None,
    action: str = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[audit.AuditEntry]:
    """Changes made through the API, newest first (default: the last 30 days). Needs the admin scope."""
    return audit.entries(store, since or datetime.now(UTC) - timedelta(days=30), action, limit)
