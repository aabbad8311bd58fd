"""The demo's hospital network: a simulated integration estate that sends real OTLP, logs and queue
traffic to Triage, with injected faults and the ground truth of what Triage should say.

`triage demo` (app/demo.py) is the way in. In code: `Simulation(settings, business, scenario,
options)` runs the estate beside a server (`run_beside(stop)` is a background task);
`Summary(simulation, api)` shows what Triage says (`run(store, stop)`); `demo_config(speed, ...)` is
demo.yaml at a speed, `demo_settings` it under the user's settings; `load_scenario()` the faults and
traffic; `declare_queues` / `delete_queues` the run's RabbitMQ queues.
Loaded on first use, so that `triage` commands other than `demo` do not pay for the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types, for readers and mypy; at run time each name loads on first use
    from simulator.brokers import declare_queues as declare_queues
    from simulator.brokers import delete_queues as delete_queues
    from simulator.config import DEFAULT_AMQP as DEFAULT_AMQP
    from simulator.config import DemoOptions as DemoOptions
    from simulator.config import business_settings as business_settings
    from simulator.config import check_backfill as check_backfill
    from simulator.config import demo_config as demo_config
    from simulator.config import demo_settings as demo_settings
    from simulator.config import make_workdir as make_workdir
    from simulator.scenario import load_scenario as load_scenario
    from simulator.simulation import Simulation as Simulation
    from simulator.simulation import choose_broker as choose_broker
    from simulator.summary import Summary as Summary
    from simulator.summary import banner as banner

_EXPORTS = {
    "Simulation": "simulator.simulation",
    "choose_broker": "simulator.simulation",
    "Summary": "simulator.summary",
    "banner": "simulator.summary",
    "DEFAULT_AMQP": "simulator.config",
    "DemoOptions": "simulator.config",
    "demo_config": "simulator.config",
    "demo_settings": "simulator.config",
    "business_settings": "simulator.config",
    "check_backfill": "simulator.config",
    "make_workdir": "simulator.config",
    "load_scenario": "simulator.scenario",
    "declare_queues": "simulator.brokers",
    "delete_queues": "simulator.brokers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
