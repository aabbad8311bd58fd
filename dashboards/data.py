"""The data each page shows, loaded in one call: what the pages' callbacks render and bench/ times."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import correlator as readmodel
from collector import QueueState, current_queue_states
from dashboards.filters import Filters
from dashboards.queries import alerts as alert_queries
from dashboards.queries import overview as overview_queries
from dashboards.queries import telemetry, transaction, workflow
from triage.settings import Settings, Workflow
from triage.store import Store
from triage.vocabulary import STUCK, State

log = logging.getLogger("triage.dashboards")
AT_RISK_ROWS = 25  # the overview's table of transactions at risk: the highest priority first


@dataclass
class Options:
    """Choices for the filter dropdowns: configured names first, then what the store holds."""

    workflows: list[str]
    facilities: dict[str, str]  # id → name


@dataclass
class Overview:
    filters: Filters
    options: Options
    counts: list[readmodel.StateCount]
    causes: list[readmodel.CauseGroup]
    stuck: list[readmodel.Transaction]
    at_risk: list[readmodel.Transaction]  # in progress and likely to miss the SLA (breach forecast)
    queues: list[QueueState]
    queue_series: dict[str, telemetry.Series]
    services: list[telemetry.ServiceHealth]
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def total(self) -> int:
        return sum(c.count for c in self.counts)


@dataclass
class TransactionView:
    workflow: str
    key: str
    detail: transaction.TransactionDetail | None
    definition: Workflow | None
    queues: list[QueueState]
    queue_series: dict[str, telemetry.Series]


@dataclass
class WorkflowView:
    filters: Filters
    options: Options
    definition: Workflow | None
    transitions: list[workflow.Transition]
    step_states: list[workflow.StepState]
    cycle_times: workflow.CycleTimes
    throughput: workflow.Throughput


@dataclass
class Dependencies:
    filters: Filters
    services: list[telemetry.ServiceHealth]
    queues: list[QueueState]
    queue_series: dict[str, telemetry.Series]
    hurt: list[telemetry.Hurt]


def options(store: Store, settings: Settings) -> Options:
    stored_workflows, stored_facilities = overview_queries.filter_options(store)
    names = [w.name for w in settings.workflows]
    names += [w for w in stored_workflows if w not in names]
    facilities = {f.id: f.name for f in settings.facilities}
    facilities.update({k: v for k, v in stored_facilities.items() if k not in facilities})
    return Options(names, facilities)


def queue_states(store: Store, settings: Settings) -> list[QueueState]:
    """Every queue's current state, from the collector."""
    return list(current_queue_states(store, settings))


def overview(store: Store, settings: Settings, filters: Filters) -> Overview:
    since = filters.since()
    where = filters.transactions()
    # The most urgent stuck ones; a state filter from an alert link narrows them (to none if not a stuck state).
    stuck_states = tuple(s for s in where.states or STUCK if s in STUCK)
    # Only transactions still in progress can be at risk; a filter to other states shows none.
    risky = not where.states or State.IN_PROGRESS in where.states
    at_risk = replace(where, states=(State.IN_PROGRESS,), at_risk=True)
    return Overview(
        filters=filters,
        options=options(store, settings),
        counts=overview_queries.state_counts(store, where, filters.seconds),
        causes=overview_queries.cause_groups(store, where, limit=10),
        stuck=overview_queries.attention(store, replace(where, states=stuck_states), limit=25) if stuck_states else [],
        at_risk=overview_queries.attention(store, at_risk, limit=AT_RISK_ROWS) if risky else [],
        queues=queue_states(store, settings),
        queue_series=telemetry.queue_series(store, since, filters.seconds),
        services=telemetry.service_health(store, since, filters.seconds),
    )


def workflow_definition(settings: Settings, name: str) -> Workflow | None:
    return next((w for w in settings.workflows if w.name == name), None)


def transaction_view(store: Store, settings: Settings, workflow_name: str, key: str) -> TransactionView:
    detail = transaction.transaction_detail(store, workflow_name, key) if workflow_name and key else None
    waits_in = {str(c.evidence.get("queue") or c.component) for c in detail.causes if c.active} if detail else set()
    queues = [q for q in queue_states(store, settings) if waits_in & {q.name, q.destination}] if waits_in else []
    series: dict[str, telemetry.Series] = {}
    if queues and detail is not None:
        start = min(detail.transaction.started_at, datetime.now(UTC))
        window = max(3600, int((datetime.now(UTC) - start).total_seconds()))
        every = telemetry.queue_series(store, start, window)
        series = {q.name: every[q.name] for q in queues if q.name in every}
    return TransactionView(workflow_name, key, detail, workflow_definition(settings, workflow_name), queues, series)


def workflow_view(store: Store, settings: Settings, filters: Filters) -> WorkflowView:
    opts = options(store, settings)
    if not filters.workflow and opts.workflows:
        filters = filters.with_values(workflow=opts.workflows[0])
    return WorkflowView(
        filters=filters,
        options=opts,
        definition=workflow_definition(settings, filters.workflow),
        transitions=workflow.transitions(store, filters.workflow, filters.seconds) if filters.workflow else [],
        step_states=workflow.step_states(store, filters) if filters.workflow else [],
        cycle_times=workflow.cycle_times(store, filters),
        throughput=workflow.throughput(store, filters),
    )


def dependencies(store: Store, settings: Settings, filters: Filters) -> Dependencies:
    since = filters.since()
    return Dependencies(
        filters=filters,
        services=telemetry.service_health(store, since, filters.seconds, latency=True),
        queues=queue_states(store, settings),
        queue_series=telemetry.queue_series(store, since, filters.seconds),
        hurt=telemetry.hurt_workflows(store),
    )


def alerts(store: Store, filters: Filters | None = None) -> alert_queries.AlertsView:
    return alert_queries.alerts_view(store, (filters or Filters()).since())


@dataclass
class DiscoveryView:
    """A proposed workflow for the discovery page, or why there is none."""

    key: str
    range: str
    found: readmodel.Discovery | None
    problem: str = ""


DISCOVERY_LIMIT = 5_000  # transactions the page reads: enough to see a flow, cheap to mine
DISCOVERY_TTL = 60.0  # seconds a proposal is reused for the same key and range
_discoveries: dict[tuple[str, str, str], tuple[float, DiscoveryView]] = {}


def discovery(store: Store, settings: Settings, key: str, window: str) -> DiscoveryView:
    """The workflow discovery proposes for `key` over the last `window` (a filters RANGE), reused for a minute."""
    cache = (store.dsn, key, window)
    now = time.monotonic()
    kept = _discoveries.get(cache)
    if kept and now - kept[0] < DISCOVERY_TTL:
        return kept[1]
    since = Filters(range=window).since()
    try:
        found = readmodel.discover(
            store,
            key,
            since,
            facilities=settings.facilities,
            hops=settings.correlation.hop_rounds,
            limit=DISCOVERY_LIMIT,
        )
        view = DiscoveryView(key, window, found)
    except readmodel.NothingToDiscover as exc:
        view = DiscoveryView(key, window, None, str(exc))
    if len(_discoveries) > 32:
        _discoveries.clear()
    _discoveries[cache] = (now, view)
    return view
