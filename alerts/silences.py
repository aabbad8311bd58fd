"""Silences: label matchers and a time range; a silenced alert sends nothing new. Persisted in the store."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import re2
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from triage.durations import Duration
from triage.store import Store
from triage.times import StoreTime, storable

SilenceState = Literal["pending", "active", "expired"]
_QUIET = re2.Options()
_QUIET.log_errors = False
_COLUMNS = ["Id", "Matchers", "StartsAt", "EndsAt", "CreatedBy", "Comment", "CreatedAt", "Version"]
_ALL = f"SELECT {', '.join(_COLUMNS[:-1])} FROM alert_silences FINAL ORDER BY CreatedAt DESC LIMIT 10000"
_ONE = f"SELECT {', '.join(_COLUMNS[:-1])} FROM alert_silences FINAL WHERE Id = {{id:String}}"
_CURRENT = (
    f"SELECT {', '.join(_COLUMNS[:-1])} FROM alert_silences FINAL "
    "WHERE EndsAt > {now:DateTime64(3)} ORDER BY CreatedAt"
)


class Matcher(BaseModel):
    """name=value (is_equal), name!=value, name=~regex, name!~regex: Alertmanager's matchers."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="label name, e.g. workflow")
    value: str
    is_regex: bool = Field(False, validation_alias=AliasChoices("is_regex", "isRegex"))
    is_equal: bool = Field(True, validation_alias=AliasChoices("is_equal", "isEqual"))

    # RE2, as Alertmanager's own matchers: linear time, so no value can make matching backtrack for ever.
    _regex: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compiles(self) -> Matcher:
        if self.is_regex:
            try:
                self._regex = re2.compile(self.value, options=_QUIET)
            except re2.error as exc:
                reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                raise ValueError(
                    f"matcher {self.name}: {self.value!r} is not a valid regular expression (RE2 syntax, as "
                    f"Alertmanager's): {reason}"
                ) from exc
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        hit = self._regex.fullmatch(actual) is not None if self.is_regex else actual == self.value
        return bool(hit == self.is_equal)


class SilenceRequest(BaseModel):
    """POST /api/v1/silences: matchers and either `ends_at` or `duration`."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(min_length=1)
    starts_at: StoreTime | None = Field(None, description="default: now")
    ends_at: StoreTime | None = None
    duration: Duration | None = Field(None, description="instead of ends_at: '2h', '30m'")
    created_by: str = Field("api", max_length=200)
    comment: str = Field("", max_length=2000)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @model_validator(mode="after")
    def _range(self) -> SilenceRequest:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give either ends_at (RFC 3339) or duration ('2h'), not both and not neither")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive, e.g. '2h'")
        if all(m.matches({}) for m in self.matchers):
            raise ValueError(
                "these matchers match every alert; add one that names something, e.g. "
                '{"name": "alertname", "value": "critical_work_blocked"}'
            )
        return self


class Silence(BaseModel):
    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    state: SilenceState = "active"

    def state_at(self, now: datetime) -> SilenceState:
        if now >= self.ends_at:
            return "expired"
        return "pending" if now < self.starts_at else "active"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def _silence(row: Sequence[Any], now: datetime) -> Silence:
    silence = Silence(
        id=str(row[0]),
        matchers=[Matcher.model_validate(m) for m in json.loads(str(row[1]))],
        starts_at=row[2],
        ends_at=row[3],
        created_by=str(row[4]),
        comment=str(row[5]),
        created_at=row[6],
    )
    silence.state = silence.state_at(now)
    return silence


def _write(store: Store, s: Silence) -> None:
    matchers = json.dumps([m.model_dump() for m in s.matchers])
    row = [s.id, matchers, s.starts_at, s.ends_at, s.created_by, s.comment, s.created_at, time.time_ns()]
    store.insert("alert_silences", [row], _COLUMNS)


def create_silence(store: Store, request: SilenceRequest, now: datetime | None = None) -> Silence:
    """Store a new silence; it takes effect at the evaluator's next cycle."""
    now = now or datetime.now(UTC)
    starts = request.starts_at or now
    try:
        ends = storable(request.ends_at or starts + timedelta(seconds=request.duration or 0))
    except OverflowError as exc:
        raise ValueError(f"duration {request.duration}s is too long; a silence must end before 2262") from exc
    if ends <= now:
        raise ValueError(f"ends_at {ends.isoformat()} is in the past; a silence must end in the future")
    if ends <= starts:
        raise ValueError(f"ends_at {ends.isoformat()} must be after starts_at {starts.isoformat()}")
    silence = Silence(
        id=str(uuid.uuid4()),
        matchers=request.matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=request.created_by,
        comment=request.comment,
        created_at=now,
    )
    _write(store, silence)
    silence.state = silence.state_at(now)
    return silence


def list_silences(store: Store, now: datetime | None = None) -> list[Silence]:
    now = now or datetime.now(UTC)
    return [_silence(r, now) for r in store.query(_ALL).result_rows]


def get_silence(store: Store, silence_id: str, now: datetime | None = None) -> Silence | None:
    row = store.query(_ONE, {"id": silence_id}).first_row
    return _silence(row, now or datetime.now(UTC)) if row else None


def expire_silence(store: Store, silence_id: str, now: datetime | None = None) -> Silence | None:
    """End a silence now (as Alertmanager does: it stays listed, as expired); None if unknown."""
    now = now or datetime.now(UTC)
    silence = get_silence(store, silence_id, now)
    if silence is None or silence.state == "expired":
        return silence
    silence.starts_at, silence.ends_at = min(silence.starts_at, now), now
    _write(store, silence)
    silence.state = "expired"
    return silence


def current_silences(store: Store, now: datetime) -> list[Silence]:
    """Silences not yet expired (active and pending)."""
    return [_silence(r, now) for r in store.query(_CURRENT, {"now": now}).result_rows]


def silenced_by(silences: list[Silence], labels: dict[str, str], now: datetime) -> list[str]:
    """Ids of the active silences that match these labels."""
    return [s.id for s in silences if s.state_at(now) == "active" and s.matches(labels)]
