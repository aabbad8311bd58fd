"""The audit log: changes people make through the API (silences, alert rules, replays), with who made
them. Appended to `triage_audit` (migration 0012); read by `GET /api/v1/audit`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from triage.store import Store

_RECENT = """
SELECT At, Actor, Action, Target, Detail FROM triage_audit
WHERE At >= {since:DateTime64(3)} AND ({action:String} = '' OR Action = {action:String})
ORDER BY At DESC
LIMIT {limit:UInt32}
"""


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def record(store: Store, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append one change: `actor` did `action` (silence.create, rule.delete, replay, ...) to `target`."""
    body = json.dumps(detail or {}, default=str, sort_keys=True)
    store.insert(
        "triage_audit",
        [[datetime.now(UTC), actor, action, target, body]],
        ["At", "Actor", "Action", "Target", "Detail"],
    )


def entries(store: Store, since: datetime, action: str = "", limit: int = 200) -> list[AuditEntry]:
    """The changes since `since`, newest first."""
    rows = store.query(_RECENT, {"since": since, "action": action, "limit": limit}).result_rows
    return [AuditEntry(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}")) for r in rows]
