"""Polling: one poll of a `queues:` entry, and the loop that polls every entry on its interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from collector.queues import exporters, jetstream, metrics, rabbitmq, redis_streams
from collector.queues.history import write_samples
from collector.queues.sample import PollError, QueueSample, failed, safe_url, with_rates
from triage.health import TaskHealth
from triage.settings import Queue
from triage.store import Store

log = logging.getLogger("triage.collector.queues")

_POLLERS: dict[str, Callable[[Queue], QueueSample]] = {
    "rabbitmq": rabbitmq.poll,
    "nats": jetstream.poll,
    "redis": redis_streams.poll,
}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PollError):
        return str(exc)
    text = str(exc) or repr(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


def _failed_samples(config: Queue, error: str, previous: Mapping[str, QueueSample]) -> list[QueueSample]:
    """Error samples for every queue the entry last reported (an exporter reports many)."""
    known = [s for s in previous.values() if s.source == config.name]
    if not known:
        system = "prometheus" if config.kind == "prometheus" else config.kind
        return [
            failed(
                config.name,
                system,
                error,
                source=config.name,
                destination=config.queue or config.stream or "",
            )
        ]
    return [failed(s.queue, s.system, error, source=config.name, destination=s.destination) for s in known]


def poll_once(config: Queue, previous: Mapping[str, QueueSample] | None = None) -> list[QueueSample]:
    """Poll one `queues:` entry now: its samples, with rates derived from `previous` (by queue name).

    Blocking; never raises for a broker problem: a failed poll yields samples whose `error` says
    what failed and where (status `unknown`). RabbitMQ, NATS and Redis entries yield one sample;
    a Prometheus exporter yields one per queue or consumer group and topic it describes.
    """
    previous = previous or {}
    started = time.perf_counter()
    try:
        if config.kind == "prometheus":
            samples = exporters.poll(config)
        elif config.kind in _POLLERS:
            samples = [_POLLERS[config.kind](config)]
        else:
            raise ValueError(f"queue {config.name!r} is kind {config.kind!r}: it is pushed, not polled")
    except Exception as exc:  # every client raises its own types; all mean "this poll failed"
        where = safe_url(config.management_url or config.url)
        error = f"cannot poll {config.kind} at {where}: {_describe(exc)}"
        metrics.POLLS.labels(queue=config.name, outcome="error").inc()
        return _failed_samples(config, error, previous)
    finally:
        metrics.POLL_SECONDS.labels(kind=config.kind).observe(time.perf_counter() - started)
    metrics.POLLS.labels(queue=config.name, outcome="ok").inc()
    return [with_rates(s, previous.get(s.queue)) for s in samples]


class _EntryPoller:
    """Polls one entry forever, remembering the last good samples for rates and logging changes once."""

    def __init__(self, store: Store, config: Queue, health: TaskHealth) -> None:
        self.store = store
        self.config = config
        self.health = health
        self.previous: dict[str, QueueSample] = {}
        self.last_error = ""

    def _log(self, samples: list[QueueSample]) -> None:
        error = next((s.error for s in samples if s.error), "")
        if error and error != self.last_error:
            log.warning("event=queue_poll_failed queue=%s kind=%s error=%r", self.config.name, self.config.kind, error)
        elif self.last_error and not error:
            log.info("event=queue_poll_recovered queue=%s kind=%s", self.config.name, self.config.kind)
        self.last_error = error

    async def poll_and_write(self) -> None:
        samples = await asyncio.to_thread(poll_once, self.config, self.previous)
        self._log(samples)
        self.previous.update({s.queue: s for s in samples if s.ok})
        await asyncio.to_thread(write_samples, self.store, samples)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                await self.poll_and_write()
                self.health.succeeded()
            except Exception as exc:  # the store refused the write: say so, keep polling
                self.health.failed(exc)
                log.exception("event=queue_sample_write_failed queue=%s", self.config.name)
            wait = max(0.0, self.config.interval - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)


async def run_pollers(store: Store, queues: list[Queue], stop: asyncio.Event, health: TaskHealth | None = None) -> None:
    """Poll every polled `queues:` entry on its interval until `stop` is set; one failing never stops others.

    Polls run in worker threads, so the event loop never blocks on a broker.
    """
    configs = [q for q in queues if q.kind != "push"]
    if not configs:
        return
    log.info("event=queue_pollers_started queues=%s", ",".join(q.name for q in configs))
    health = health or TaskHealth("queue pollers")
    tasks = [
        asyncio.create_task(_EntryPoller(store, q, health).run(stop), name=f"queue-poller:{q.name}") for q in configs
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
