"""The fault schedule: which injected faults are on at a simulated time, scripted and random.

Pure and deterministic: the same scenario and seed give the same schedule. Times are simulated
seconds since the live run started; negative times are history (before the run), when only
faults with a `history` length were on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.scenario import FaultKind, FaultSpec, RandomFaultSpec, Scenario

# Random faults are drawn this far ahead (simulated time): a week is more than any demo runs.
HORIZON = 7 * 86400.0


@dataclass(frozen=True)
class Fault:
    """One fault being on: what, where, and how badly."""

    name: str
    kind: FaultKind
    target: str
    status: int = 503
    error_rate: float = 1.0


@dataclass(frozen=True)
class _Window:
    fault: Fault
    start: float
    end: float


class FaultSchedule:
    """Scripted faults (repeating every `cycle`; `end: null` stays on) and random outage windows."""

    def __init__(self, scenario: Scenario, seed: int, horizon: float = HORIZON) -> None:
        self.cycle = scenario.cycle
        self._scripted = list(scenario.faults)
        self._random = _draw(scenario.random_faults, random.Random(f"faults:{seed}"), horizon)

    def active(self, kind: FaultKind, target: str, t: float) -> Fault | None:
        """The fault of this kind on this target at simulated time t, if one is on."""
        return next((f for f in self.active_faults(t) if f.kind == kind and f.target == target), None)

    def active_faults(self, t: float) -> list[Fault]:
        """Every fault on at simulated time t, scripted first."""
        on = [_fault(spec) for spec in self._scripted if self._scripted_on(spec, t)]
        on.extend(w.fault for w in self._random if w.start <= t < w.end)
        return on

    def recurring(self, kind: FaultKind, target: str, t: float) -> tuple[Fault, float] | None:
        """The scripted fault of this kind on this target that repeats every cycle and is on at simulated
        time t, past included (the history's faults: the estate's weekly pattern before the run), with the
        simulated time it goes off; None when none is. A fault without an end is a fate in history."""
        for spec in self._scripted:
            if spec.kind == kind and spec.target == target and spec.end is not None:
                phase = t % self.cycle
                if spec.start <= phase < spec.end:
                    return _fault(spec), t - phase + spec.end
        return None

    def _scripted_on(self, spec: FaultSpec, t: float) -> bool:
        if t < 0:
            return spec.history > 0 and t >= -spec.history
        if spec.end is None:
            return t >= spec.start
        return spec.start <= t % self.cycle < spec.end


def _fault(spec: FaultSpec | RandomFaultSpec, name: str | None = None) -> Fault:
    label = name or getattr(spec, "name", "") or f"{spec.target} {spec.kind.replace('_', ' ')}"
    return Fault(label, spec.kind, spec.target, spec.status, spec.error_rate)


def _draw(specs: list[RandomFaultSpec], rng: random.Random, horizon: float) -> list[_Window]:
    """Poisson arrivals with mean gap `every`, each lasting a uniform draw from `length`."""
    windows: list[_Window] = []
    for spec in specs:
        fault = _fault(spec, f"{spec.target} {spec.kind.replace('_', ' ')} (random)")
        t = 0.0
        while True:
            t += rng.expovariate(1.0 / spec.every)
            if t > horizon:
                break
            length = rng.uniform(*spec.length)
            windows.append(_Window(fault, t, t + length))
            t += length
    return windows
