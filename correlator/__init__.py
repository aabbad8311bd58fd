"""Correlator: stitches spans, logs and queue lag into business transactions and names their causes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from correlator.engine import Correlator, CycleResult
from correlator.health import dependency_health
from correlator.machine import BLOCKED, COMPLETED, FAILED, IN_PROGRESS, STALLED, STUCK

if TYPE_CHECKING:
    from triage.runtime import Runtime

__all__ = [
    "BLOCKED",
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS",
    "STALLED",
    "STUCK",
    "Correlator",
    "CycleResult",
    "dependency_health",
    "run_correlator",
]


async def run_correlator(runtime: Runtime, stop: asyncio.Event) -> None:
    """Background task for `triage serve`: correlate until stopped (no-op without workflows)."""
    if not runtime.settings.workflows or not runtime.settings.correlation.enabled:
        return
    correlator = Correlator(runtime.store, runtime.settings)
    runtime.extras["correlator"] = correlator
    await correlator.run(stop)
