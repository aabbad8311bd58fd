"""What the attributes of the spans that name a key tell discovery: which is the money (the `value`),
which names the facility, which may decide a conditional step, and the cut that says "value ≥ N"."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from correlator.mining import Activity

CONDITION_FIT = 0.9  # a condition's precision and recall, both at least this
_MONEY = re.compile(r"amount|value|total|price|cost|spend|sum\b", re.I)
_NOT_MONEY = re.compile(
    r"(^|[._])(id|ids|number|no|count|code|status|port|size|bytes|duration|ms|retries|version|year|line)s?([._]|$)"
    r"|^(http|net|rpc|db|server|client|messaging|thread|process|otel)\.",
    re.I,
)
_FACILITY = re.compile(r"facility|hospital|clinic|site|location|ward", re.I)


@dataclass(frozen=True)
class AttributeStats:
    """One attribute on the spans of one activity that name the key."""

    activity: Activity
    name: str
    total: int  # spans of the activity
    spans: int  # of those, with this attribute
    numeric: int  # of those, with a number
    mean: float
    spread: float  # standard deviation of the numbers
    distinct: int
    facility_hits: int  # values that are configured facility ids

    @property
    def is_number(self) -> bool:
        return self.numeric >= 0.9 * self.spans


class Profile:
    """The attributes of the spans that name the key, per activity (the first statement's answer)."""

    def __init__(self, rows: list[AttributeStats], criticality: dict[str, str]) -> None:
        self.rows = rows
        self.criticality = criticality  # facility id → tier, as configured

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], criticality: dict[str, str]) -> Profile:
        stats = [
            AttributeStats(
                activity=Activity(str(r[0]), str(r[1]), str(r[2])),
                name=str(r[3]),
                total=int(r[4]),
                spans=int(r[5]),
                numeric=int(r[6]),
                mean=_finite(r[7]),
                spread=_finite(r[8]),
                distinct=int(r[9]),
                facility_hits=int(r[10]),
            )
            for r in rows
        ]
        return cls(stats, criticality)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def on(self, activity: Activity) -> dict[str, AttributeStats]:
        return {s.name: s for s in self.rows if s.activity == activity}

    def candidates(self, keys: list[str], value: str | None, limit: int) -> list[str]:
        """Attributes worth reading per transaction: numbers (a value), few-valued strings (a condition),
        facility ids; the most common first, `value` always."""
        seen: dict[str, int] = {}
        for s in self.rows:
            few = 1 < s.distinct <= 20
            useful = (s.is_number and s.distinct > 1) or few or s.facility_hits or _FACILITY.search(s.name)
            if s.name not in keys and useful:
                seen[s.name] = seen.get(s.name, 0) + s.spans
        ranked = sorted(seen, key=lambda n: (-seen[n], n))
        return list(dict.fromkeys([*([value] if value else []), *ranked]))[:limit]


def _finite(x: Any) -> float:
    value = float(x)
    return value if math.isfinite(value) else 0.0


def number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def fit(tp: int, fp: int, fn: int) -> float:
    """The lower of precision and recall of a rule (1.0 is a rule that explains every transaction)."""
    if tp == 0:
        return 0.0
    return min(tp / (tp + fp), tp / (tp + fn))


def value_threshold(known: list[tuple[float, bool]]) -> tuple[float, float] | None:
    """The cut "value ≥ N" that best says which transactions reached the step, as (a round N, its fit)."""
    reached = sum(1 for _, hit in known if hit)
    if reached < 2 or reached > len(known) - 2:
        return None
    ordered = sorted(known)
    best: tuple[float, int] | None = None  # (fit, index of the first value at or above the cut)
    above_hits, above = reached, len(ordered)
    for i, (v, hit) in enumerate(ordered):
        if i == 0 or v != ordered[i - 1][0]:
            score = fit(above_hits, above - above_hits, reached - above_hits)
            if best is None or score > best[0]:
                best = (score, i)
        above -= 1
        above_hits -= hit
    if best is None or best[0] < CONDITION_FIT or best[1] == 0:
        return None
    score, i = best
    return round_between(ordered[i - 1][0], ordered[i][0]), round(score, 3)


def round_between(lo: float, hi: float) -> float:
    """The roundest number above `lo` and at most `hi`, the lowest where several are as round (50,000
    between 47,310 and 52,800; 100,000 between 97,000 and 250,000)."""
    if hi <= 0 or hi <= lo:
        return hi
    step = 10.0 ** math.floor(math.log10(hi))
    while step >= 0.01:
        for factor in (1.0, 0.5, 0.25, 0.2):
            unit = step * factor
            candidate = (math.floor(lo / unit) + 1) * unit
            if candidate <= hi:
                return int(candidate) if candidate == int(candidate) else round(candidate, 2)
        step /= 10
    return hi


def condition_attributes(profile: Profile, first: Activity, keys: list[str]) -> list[str]:
    """Attributes on (nearly) every span of the first step that take a few values: what a `when:
    {attributes}` may name. From the first step only, so that a condition is known before the step it
    decides (an attribute of the step itself would explain it by its own presence)."""
    return sorted(
        s.name
        for s in profile.on(first).values()
        if s.name not in keys and not s.is_number and 1 < s.distinct <= 20 and s.spans >= 0.9 * s.total
    )


def value_attribute(profile: Profile, first: Activity, keys: list[str]) -> str | None:
    """The numeric attribute of the first step that looks like money: a name that says so, else the one that
    varies most (largest coefficient of variation); never a key, an id, a count or a status code."""
    on_first = profile.on(first)
    pool = [
        s
        for s in on_first.values()
        if s.name not in keys and s.is_number and s.distinct > 1 and s.spans >= 0.5 * s.total
        and not _NOT_MONEY.search(s.name)
    ]  # fmt: skip
    named = [s for s in pool if _MONEY.search(s.name)]
    ranked = sorted(named or pool, key=lambda s: (-(s.spread / abs(s.mean) if s.mean else s.spread), s.name))
    return ranked[0].name if ranked else None


def facility_attribute(profile: Profile, first: Activity, keys: list[str]) -> str | None:
    """The attribute whose values are configured facility ids; without facilities configured, a
    facility-like name on the first step."""
    if profile.criticality:
        hits: dict[str, int] = {}
        for s in profile.rows:
            if s.name not in keys and s.facility_hits >= 0.8 * s.spans:
                hits[s.name] = hits.get(s.name, 0) + s.facility_hits
        if hits:
            return max(sorted(hits), key=lambda n: hits[n])
    named = [s for s in profile.on(first).values() if s.name not in keys and _FACILITY.search(s.name)]
    return max(named, key=lambda s: s.spans).name if named else None
