"""Priority of a transaction: who should be looked at first.

    priority = criticality weight × value factor × (1 + overdue ratio) × period-close factor

- criticality weight: critical 3, high 2, normal 1 (the facility's tier);
- value factor: 1 + log10(1 + value / 1,000), so $182k weighs ~3.3 and $0 weighs 1;
- overdue ratio: time past the due time ÷ the step's SLA, capped at 10 (0 when not overdue);
- period-close factor: 1 + 2 / (1 + days until the next period close), for dates listed under
  `correlation.period_close` (so 3 the day of the close, 2 one day before, ~1.3 a week before).
Completed transactions have priority 0; in-progress ones keep their (small) score for sorting.
"""

from __future__ import annotations

import math
from datetime import date, datetime

WEIGHTS = {"critical": 3.0, "high": 2.0, "normal": 1.0}


def period_close_factor(now: datetime, closes: list[date]) -> float:
    upcoming = [(d - now.date()).days for d in closes if d >= now.date()]
    return 1.0 + 2.0 / (1 + min(upcoming)) if upcoming else 1.0


def score(
    state: str,
    criticality: str,
    value: float,
    overdue_seconds: float,
    sla_seconds: float | None,
    close_factor: float,
) -> float:
    """The priority of one transaction (see the module docstring)."""
    if state == "completed":
        return 0.0
    ratio = min(10.0, max(0.0, overdue_seconds) / sla_seconds) if sla_seconds else (1.0 if overdue_seconds > 0 else 0)
    value_factor = 1.0 + math.log10(1.0 + max(value, 0.0) / 1000.0)
    return round(WEIGHTS.get(criticality, 1.0) * value_factor * (1.0 + ratio) * close_factor, 3)
