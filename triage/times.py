"""Times as the store can hold them: ClickHouse's DateTime64(9) spans 1900-01-01 to 2262-04-11, so a
time outside that is refused where it enters (a 422 naming the field), never sent to a query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)


def storable(value: datetime) -> datetime:
    """`value` (UTC when it names no zone) when the store can hold it; ValueError saying the range otherwise."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(
            f"{value.isoformat()} is outside the times Triage stores ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}); "
            "give a time in that range, e.g. 2026-11-24T09:00:00Z"
        )
    return aware


# A time a request may carry (query parameter or body field).
StoreTime = Annotated[datetime, AfterValidator(storable)]
