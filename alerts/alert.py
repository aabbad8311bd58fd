"""An alert: one rule's group that matches (a `Match`) and its life (pending → firing → resolved)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

PENDING, FIRING, RESOLVED, INACTIVE = "pending", "firing", "resolved", "inactive"
ACTIVE = (PENDING, FIRING)


@dataclass
class Match:
    """A group that satisfies a rule now: the labels that name it and its business context."""

    labels: dict[str, str]
    count: int
    value: float
    context: dict[str, str]
    keys: list[str] = field(default_factory=list)
    dashboard_path: str = "/dashboards/"


@dataclass
class Alert:
    """One alert instance, as `alert_state` stores it."""

    fingerprint: str
    rule: str
    status: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    active_since: datetime
    updated_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    count: int = 0
    value: float = 0.0
    keys: list[str] = field(default_factory=list)
    am_resolved_sent: bool = False

    @property
    def episode(self) -> str:
        """Names one firing episode: deliveries are de-duplicated per episode."""
        return f"{self.fingerprint}@{int(self.fired_at.timestamp() * 1000) if self.fired_at else 0}"

    @property
    def dashboard_url(self) -> str:
        return self.annotations.get("dashboard_url", "")


@dataclass(frozen=True)
class AlertEvent:
    """One line of an alert's history: a transition or a delivery."""

    at: datetime
    fingerprint: str
    rule: str
    kind: str
    channel: str
    delivery_id: str
    detail: str
    labels: dict[str, str]


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of an alert's identity: the hash of its sorted labels."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
