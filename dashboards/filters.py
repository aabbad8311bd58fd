"""The view a URL describes: time range and business filters, parsed from and written to its query string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from correlator import TransactionFilter
from triage.vocabulary import CAUSE_KINDS, CRITICALITIES, STATES

RANGES: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
DEFAULT_RANGE = "24h"


@dataclass(frozen=True)
class Filters:
    """What a dashboard shows: `range` is how far back; empty strings mean "all". `state`, `cause` and
    `component` come from alert links (the alerts part links to the overview filtered like the alert)."""

    range: str = DEFAULT_RANGE
    workflow: str = ""
    facility: str = ""
    criticality: str = ""
    state: str = ""
    cause: str = ""
    component: str = ""

    @classmethod
    def from_query(cls, params: Mapping[str, Any]) -> Filters:
        """Filters from query parameters; unknown values fall back to the default rather than fail the page."""

        def text(name: str) -> str:
            value = params.get(name)
            if isinstance(value, list):
                value = value[0] if value else ""
            return str(value or "").strip()[:200]

        window, criticality, state, cause = text("range"), text("criticality"), text("state"), text("cause")
        return cls(
            range=window if window in RANGES else DEFAULT_RANGE,
            workflow=text("workflow"),
            facility=text("facility"),
            criticality=criticality if criticality in CRITICALITIES else "",
            state=state if state in STATES else "",
            cause=cause if cause in CAUSE_KINDS else "",
            component=text("component"),
        )

    def with_values(self, **values: Any) -> Filters:
        return replace(self, **{k: (v or "") for k, v in values.items()})

    @property
    def seconds(self) -> int:
        return RANGES.get(self.range, RANGES[DEFAULT_RANGE])

    def since(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(UTC)) - timedelta(seconds=self.seconds)

    def query_string(self) -> str:
        """`?range=7d&workflow=...` with only the values that differ from the defaults ('' when none)."""
        values = {k: v for k, v in asdict(self).items() if v and not (k == "range" and v == DEFAULT_RANGE)}
        return f"?{urlencode(values)}" if values else ""

    def transactions(self, now: datetime | None = None) -> TransactionFilter:
        """The read model's filter: transactions that started in the range, or are stuck now."""
        return TransactionFilter(
            workflow=self.workflow,
            states=(self.state,) if self.state else (),
            facility=self.facility,
            criticality=self.criticality,
            cause_kind=self.cause,
            cause_component=self.component,
            active_since=self.since(now),
        )

    def sql(self, now: datetime | None = None) -> dict[str, Any]:
        """Parameters for the placeholders of the transaction filters (and `{since}`)."""
        return {
            "workflow": self.workflow,
            "facility": self.facility,
            "criticality": self.criticality,
            "state": self.state,
            "cause": self.cause,
            "component": self.component,
            "since": self.since(now),
        }

    @property
    def narrowing(self) -> dict[str, str]:
        """The alert-link filters in force (no dropdown shows them)."""
        return {k: v for k, v in (("state", self.state), ("cause", self.cause), ("component", self.component)) if v}


def bucket_seconds(window_seconds: int, points: int = 60) -> int:
    """A round time-bucket width that gives about `points` buckets over the window."""
    for width in (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400):
        if window_seconds / width <= points:
            return width
    return 86400
