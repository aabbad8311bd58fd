"""The simulated estate's behaviour as data: traffic, history, suppliers and faults (scenario.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from triage.durations import Duration
from triage.errors import ConfigError
from triage.settings import format_validation_error, read_yaml

SCENARIO_FILE = Path(__file__).with_name("scenario.yaml")
FaultKind = Literal["outage", "consumer_stopped", "approver_on_leave", "mapping_failure", "slow_dependency"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultSpec(_Model):
    """A scripted fault: on from `start` to `end` (simulated time) in every cycle."""

    name: str
    kind: FaultKind
    target: str = Field(description="component, queue name, facility id or supplier name")
    start: Duration = 0.0
    end: Duration | None = None
    history: Duration = 0.0
    status: int = 503
    error_rate: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> FaultSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}s) must be after start ({self.start}s)")
        return self


class RandomFaultSpec(_Model):
    """A fault that strikes at random: on average every `every`, for a length drawn from `length`."""

    kind: FaultKind
    target: str
    every: Duration
    length: tuple[Duration, Duration]
    status: int = 500
    error_rate: float = Field(default=1.0, ge=0, le=1)


class Backfill(_Model):
    rates: dict[str, float] = Field(default_factory=dict)
    # The last fault cycles before the live run are played at the live traffic (per simulated hour), not at
    # `rates` per wall hour: what a step's flow is like while it moves and while it is stopped is learnt
    # from them (breach forecasts), as a real estate's recent history shows its own traffic.
    recent_cycles: int = Field(default=0, ge=0)
    outcomes: dict[str, dict[str, float]] = Field(default_factory=dict)


class Chances(_Model):
    supplier_portal_error: float = 0.0
    roster_schema_error: float = 0.0
    vendor_validation_error: float = 0.0
    silent_drop: float = 0.0
    duplicate_delivery: float = 0.0
    late_delivery: float = 0.0
    reviewer_backlog: float = 0.0
    link_only: float = 0.0


class Scenario(_Model):
    cycle: Duration = 2400.0
    traffic: dict[str, float]
    backfill: Backfill = Field(default_factory=Backfill)
    suppliers: list[str]
    supplies: list[str]
    faults: list[FaultSpec] = Field(default_factory=list)
    random_faults: list[RandomFaultSpec] = Field(default_factory=list)
    chances: Chances = Field(default_factory=Chances)

    def target_of(self, kind: FaultKind) -> str | None:
        """The target of the first scripted fault of a kind (the on-leave facility, the bad supplier)."""
        return next((f.target for f in self.faults if f.kind == kind), None)

    def history_of(self, kind: FaultKind) -> float:
        return next((f.history for f in self.faults if f.kind == kind), 0.0)


def load_scenario(path: str | Path = SCENARIO_FILE) -> Scenario:
    """The scenario file, validated; errors name the file and the field."""
    data = read_yaml(path)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), data)) from exc
