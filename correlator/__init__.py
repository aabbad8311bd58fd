"""Correlator: stitches spans, logs and queue lag into business transactions, names their causes, and
owns the read model of transactions and causes that the API, the dashboards and alerts use.

The small public surface:

- `Correlator(store, settings)`: `run_once()`, `replay(start, end)`, `run(stop)` (the background loop);
- `dependency_health(store, since, until)`: error rates of the services spans call;
- the read model (`correlator.transactions`): `Transaction`, `TransactionFilter`, `list_transactions`,
  `get_transaction`, `timeline`, `cause_history`, `cause_groups`, `state_counts`, `filter_options`,
  `group_transactions` (alert rules), `stuck_by_component`;
- `refresh_gauges(store, now)`: the business gauges on /metrics (the correlator owns them);
- `discover(store, key_attribute, since)`: a workflow proposed from the raw telemetry that carries a key
  (`Discovery`: the config-shaped workflow, its YAML, the `DiscoveryEvidence`; `NothingToDiscover` when nothing does).
"""

from __future__ import annotations

import asyncio

from correlator.discover import Discovery, NothingToDiscover, discover
from correlator.engine import Correlator, CycleResult
from correlator.gauges import refresh as refresh_gauges
from correlator.health import dependency_health
from correlator.proposal import DiscoveredStep, DiscoveredTransition, DiscoveryEvidence
from correlator.transactions import (
    After,
    Cause,
    CauseGroup,
    CauseRecord,
    SampleTransaction,
    Selection,
    StateCount,
    StuckComponent,
    TimelineEvent,
    Transaction,
    TransactionFilter,
    TransactionGroup,
    cause_groups,
    cause_history,
    filter_options,
    get_transaction,
    group_transactions,
    list_transactions,
    state_counts,
    stuck_by_component,
    timeline,
)

__all__ = [
    "After",
    "Cause",
    "CauseGroup",
    "CauseRecord",
    "Correlator",
    "CycleResult",
    "DiscoveredStep",
    "DiscoveredTransition",
    "Discovery",
    "DiscoveryEvidence",
    "NothingToDiscover",
    "SampleTransaction",
    "Selection",
    "StateCount",
    "StuckComponent",
    "TimelineEvent",
    "Transaction",
    "TransactionFilter",
    "TransactionGroup",
    "cause_groups",
    "cause_history",
    "dependency_health",
    "discover",
    "filter_options",
    "get_transaction",
    "group_transactions",
    "list_transactions",
    "refresh_gauges",
    "run_correlator",
    "state_counts",
    "stuck_by_component",
    "timeline",
]


async def run_correlator(correlator: Correlator, stop: asyncio.Event) -> None:
    """Background task for `triage serve`: correlate until stopped (no-op without workflows)."""
    settings = correlator.settings
    if not settings.workflows or not settings.correlation.enabled:
        return
    await correlator.run(stop)
