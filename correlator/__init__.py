"""Correlator: stitches spans, logs and queue lag into business transactions, names their causes, and
owns the read model of transactions and causes that the API, the dashboards and alerts use.

The small public surface:

- `Correlator(store, settings, shard)`: `run_once()`, `replay(start, end)` over one shard's transactions;
- `ShardWorker(store, settings)`: a process's correlation, its shard and any whose worker stopped
  (leases), `run(stop)` the background loop;
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
from correlator.sharding import ShardWorker
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
    cause_group,
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
    "ShardWorker",
    "Selection",
    "StateCount",
    "StuckComponent",
    "TimelineEvent",
    "Transaction",
    "TransactionFilter",
    "TransactionGroup",
    "cause_group",
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


async def run_correlator(worker: ShardWorker, stop: asyncio.Event) -> None:
    """Background task for `triage serve`: correlate the worker's shards until stopped (no-op without workflows)."""
    settings = worker.settings
    if not settings.workflows or not settings.correlation.enabled:
        return
    await worker.run(stop)
