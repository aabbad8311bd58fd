"""The demo's hospital network: a simulated integration estate that sends real OTLP, logs and queue
traffic to Triage, with injected faults and the ground truth of what Triage should say.

`triage demo` (simulator.cli) is the way in. In code: `Simulation(settings, business, scenario,
options)` runs the estate beside a server (`run_in_server` is a `serve()` background task);
`demo_config(speed, ...)` is demo.yaml at a speed; `load_scenario()` the faults and traffic.
Loaded on first use, so that `triage` commands other than `demo` do not pay for the SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Simulation": "simulator.simulation",
    "DemoOptions": "simulator.config",
    "demo_config": "simulator.config",
    "business_settings": "simulator.config",
    "load_scenario": "simulator.scenario",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
