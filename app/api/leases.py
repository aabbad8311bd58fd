"""Who holds what: correlator shards, the alert evaluator and the queue pollers (docs/correlation.md, "Shards")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.api.deps import get_runtime
from app.runtime import Runtime
from triage.leases import lease_states

router = APIRouter(tags=["leases"])


class LeaseItem(BaseModel):
    name: str  # correlator/<i>/<n>, alerts, pollers
    term: int
    holder: str | None  # host:pid:role:id of the winner of the newest term
    expires: datetime | None
    free: bool  # nobody holds it: released or lapsed (a standby takes it at its next check)
    wanted: bool  # its home worker asked for it back


class Leases(BaseModel):
    roles: list[str]  # this process's
    shard: str
    held_here: list[str]  # the correlator shards this process holds now
    leases: list[LeaseItem]


@router.get("/leases", response_model=Leases)
def leases(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Leases:
    """Every lease in the store and who holds it, with this process's roles and the shards it holds."""
    held = [s.name for s in runtime.worker.held()] if runtime.worker else []
    items = [
        LeaseItem(name=s.name, term=s.term, holder=s.holder, expires=s.expires, free=s.free, wanted=s.wanted)
        for s in lease_states(runtime.store)
    ]
    return Leases(roles=list(runtime.settings.roles), shard=runtime.settings.shard.name, held_here=held, leases=items)
