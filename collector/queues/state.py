"""The current state of every queue: its latest sample judged over its window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from collector.queues.history import recent_samples
from collector.queues.sample import QueueSample, utc_now
from collector.queues.status import Status, Thresholds, Trend, assess
from triage.settings import Queue, Settings
from triage.store import Store

PUSH_SOURCE = "push"


class QueueState(BaseModel):
    """What GET /api/v1/queues answers for one queue, and what the correlator reads."""

    name: str = Field(description="config name; `<config>/<topic>/<group>` or `<config>/<queue>` for exporters")
    system: str = Field(description="rabbitmq, nats, redis, kafka, or what a pusher said")
    backlog: int | None = Field(description="messages waiting or in flight (not yet acknowledged)")
    consumers: int | None = Field(description="consumers attached; null when the source cannot tell")
    oldest_age_seconds: float | None = Field(description="age of the oldest waiting message, if known")
    rate_in: float | None = Field(description="messages/s arriving")
    rate_out: float | None = Field(description="messages/s consumed")
    status: Status
    time_lag_seconds: float | None = Field(
        None, description="seconds behind: the oldest age, else backlog ÷ drain rate; null if not draining"
    )
    trend: Trend | None = Field(None, description="backlog change over the window")
    detail: str = Field("", description="why the status is what it is, in words")
    error: str | None = Field(None, description="the last poll's error, when it failed")
    sampled_at: datetime | None = Field(None, description="time of the latest sample")
    unacked: int | None = Field(None, description="delivered but not yet acknowledged (part of backlog)")
    destination: str = Field("", description="queue, stream or topic name spans use")
    consumer_group: str | None = Field(None, description="consumer group or durable consumer, if any")
    source: str = Field("", description="the `queues:` entry that polls it, or `push`")

    def matches(self, destination_name: str) -> bool:
        """Whether a span's `messaging.destination.name` names this queue."""
        return destination_name in (self.name, self.destination)


def thresholds_for(config: Queue | None) -> Thresholds:
    """Status thresholds from a queue's config; defaults for queues only ever pushed."""
    if config is None:
        return Thresholds(stale_seconds=None)
    polled = config.kind != "push" or "interval" in config.model_fields_set
    return Thresholds(
        window_seconds=config.effective_window,
        lag_seconds=config.lag_threshold,
        stale_seconds=3 * config.interval + config.timeout if polled else None,
    )


def state_of(
    name: str,
    samples: Sequence[QueueSample],
    config: Queue | None,
    now: datetime,
) -> QueueState:
    """One queue's state from its recent samples (oldest first; may be empty)."""
    judged = assess(samples, thresholds_for(config), now)
    latest = samples[-1] if samples else None
    good = latest if latest and latest.ok else None  # a failed poll shows no stale numbers
    default_system = "push" if config is None or config.kind in ("push", "prometheus") else config.kind
    return QueueState(
        name=name,
        system=latest.system if latest else default_system,
        backlog=good.backlog if good else None,
        consumers=good.consumers if good else None,
        oldest_age_seconds=good.oldest_age_seconds if good else None,
        rate_in=good.rate_in if good else None,
        rate_out=good.rate_out if good else None,
        status=judged.status,
        time_lag_seconds=judged.time_lag_seconds,
        trend=judged.trend,
        detail=judged.detail,
        error=latest.error if latest and latest.error else None,
        sampled_at=latest.time if latest else None,
        unacked=good.unacked if good else None,
        destination=(latest.destination if latest else "") or _destination(config),
        consumer_group=(latest.consumer_group if latest else "") or (config and config.consumer) or None,
        source=(latest.source if latest else "") or (config.name if config else PUSH_SOURCE),
    )


def _destination(config: Queue | None) -> str:
    if config is None or config.kind == "prometheus":
        return ""
    return config.queue or config.stream or ""


def _shown(by_queue: dict[str, list[QueueSample]], configs: dict[str, Queue]) -> dict[str, list[QueueSample]]:
    """Queues of current config entries (and pushed ones), without an exporter's superseded error row."""
    shown = {q: s for q, s in by_queue.items() if s[-1].source in configs or s[-1].source == PUSH_SOURCE}
    for name, config in configs.items():
        if config.kind != "prometheus" or name not in shown:
            continue
        latest = shown[name][-1].time
        if any(s[-1].source == name and s[-1].time >= latest for q, s in shown.items() if q != name):
            del shown[name]
    return shown


def current_queue_states(store: Store, settings: Settings, now: datetime | None = None) -> list[QueueState]:
    """Every configured, exporter-discovered or pushed queue with its status, sorted by name."""
    now = now or utc_now()
    configs = {q.name: q for q in settings.queues}
    shown = _shown(recent_samples(store), configs)
    states = []
    for name, samples in shown.items():
        source = samples[-1].source
        config = configs.get(name) if source == PUSH_SOURCE else configs.get(source)
        states.append(state_of(name, samples, config, now))
    discovered = {s[-1].source for s in shown.values()}
    for name, config in configs.items():
        if name not in shown and not (config.kind == "prometheus" and name in discovered):
            states.append(state_of(name, [], config, now))
    return sorted(states, key=lambda s: s.name)
