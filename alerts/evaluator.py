"""The alert evaluator: every `alerts.interval`, evaluate the rules, move alert state, notify.

A cycle (in a worker thread, the store calls block): load state once from the store, evaluate
every rule, refresh the queue and dependency gauges, advance pending → firing → resolved and persist the
changes, apply silences, post to Alertmanager. Back on the event loop, webhook messages that are
due go to background tasks that retry them with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from alerts import gauges, metrics, signals, state
from alerts.alert import FIRING, PENDING, Alert, Match
from alerts.alertmanager import Alertmanager
from alerts.language import AlertRule
from alerts.rules import LoadedRule, RuleBook
from alerts.silences import current_silences, silenced_by
from alerts.webhooks import TargetStatus, WebhookDispatcher
from triage.health import TaskHealth
from triage.metrics import publish
from triage.settings import Settings
from triage.store import Store

log = logging.getLogger("triage.alerts")


@dataclass
class CycleReport:
    at: datetime
    rules: int
    failed_rules: list[str]
    alerts: list[Alert]
    silenced: dict[str, list[str]]
    changed: int
    seconds: float = 0.0
    deliveries: int = 0
    firing: list[str] = field(default_factory=list)


class Evaluator:
    """Evaluates rules against the store and drives notifications; one per store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.rules = RuleBook(store, settings)
        self.live: dict[str, Alert] = {}
        conf = settings.alerts
        self.alertmanager = Alertmanager(conf) if conf.alertmanager_url else None
        self.webhooks = WebhookDispatcher(store, conf)
        self.last: CycleReport | None = None
        self.health = TaskHealth("alert evaluator")
        self._loaded = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def evaluate(self, now: datetime | None = None) -> CycleReport:
        """One evaluation (blocking): state transitions persisted, Alertmanager told."""
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        if not self._loaded:
            self.live = state.load_live(self.store, now)
            self.webhooks.done.update(state.done_deliveries(self.store, now))
            self._loaded = True
            log.info("event=alert_state_loaded alerts=%d", len(self.live))
        loaded = self.rules.current()
        matches, failed = self._matches(loaded, now)
        try:
            gauges.refresh(self.store, self.settings, now)
        except Exception:
            log.exception("event=technical_gauges_failed")
        transition = state.advance(self.live, matches, failed, self.settings, now)
        state.save(self.store, transition.changed)
        state.record(self.store, transition.events)
        for alert in transition.changed:
            log.info(
                "event=alert_%s rule=%s fingerprint=%s labels=%s summary=%r",
                alert.status,
                alert.rule,
                alert.fingerprint,
                ",".join(f"{k}={v}" for k, v in sorted(alert.labels.items())),
                alert.annotations.get("summary", ""),
            )
        silenced = self._silence_and_tell(now)
        seconds = time.perf_counter() - started
        metrics.EVALUATIONS.inc()
        metrics.EVALUATION_SECONDS.observe(seconds)
        alerts = list(self.live.values())
        report = CycleReport(now, len(loaded), sorted(failed), alerts, silenced, len(transition.changed), seconds)
        report.firing = [a.fingerprint for a in alerts if a.status == FIRING]
        self.last = report
        return report

    def _matches(self, loaded: list[LoadedRule], now: datetime) -> tuple[dict[str, tuple[AlertRule, Match]], set[str]]:
        """Every rule's matching groups by fingerprint, and the rules whose alerts must keep their state."""
        matches: dict[str, tuple[AlertRule, Match]] = {}
        failed: set[str] = set()
        for item in loaded:
            try:
                for match in signals.evaluate(item.rule, self.store, self.settings, now):
                    matches[state.match_key(item.rule, match)] = (item.rule, match)
            except Exception:
                failed.add(item.rule.name)
                metrics.EVALUATION_FAILURES.labels(item.rule.name).inc()
                log.exception("event=alert_rule_failed rule=%s source=%s", item.rule.name, item.source)
        if self.rules.degraded:  # rules we could not load this time keep their alerts as they are
            failed |= {a.rule for a in self.live.values()} - {r.rule.name for r in loaded}
        return matches, failed

    def _silence_and_tell(self, now: datetime) -> dict[str, list[str]]:
        """Apply silences, tell Alertmanager; the silenced alerts' fingerprints with their silences."""
        silences = current_silences(self.store, now)
        silenced = {fp: ids for fp, a in self.live.items() if (ids := silenced_by(silences, a.labels, now))}
        if self.alertmanager is not None:
            self.alertmanager.mirror_silences(silences, now)
            told = self.alertmanager.push(list(self.live.values()), silenced, now)
            for alert in told:
                alert.am_resolved_sent = True
            state.save(self.store, told)
        self._gauges(silenced, sum(1 for s in silences if s.state_at(now) == "active"))
        return silenced

    def _gauges(self, silenced: dict[str, list[str]], active_silences: int) -> None:
        counts: dict[tuple[str, ...], float] = {}
        for a in self.live.values():
            if a.status in (PENDING, FIRING):
                which = "silenced" if a.fingerprint in silenced else a.status
                key = (a.rule, a.severity, which)
                counts[key] = counts.get(key, 0.0) + 1
        publish(metrics.ALERTS, counts)
        metrics.SILENCES.set(active_silences)

    async def cycle(self, client: httpx.AsyncClient, now: datetime | None = None) -> CycleReport:
        """Evaluate in a worker thread, then hand due webhook messages to background tasks."""
        report = await asyncio.to_thread(self.evaluate, now)
        due = self.webhooks.plan(report.alerts, set(report.silenced))
        self.webhooks.submit(due, client)
        report.deliveries = len(due)
        return report

    def targets(self) -> list[TargetStatus]:
        """Delivery status of every channel target (for the API)."""
        out = list(self.webhooks.status.values())
        if self.alertmanager is not None:
            out.insert(0, self.alertmanager.status)
        return out

    def wake(self) -> None:
        """Ask for a cycle now (e.g. after a silence was created); safe from any thread."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle until `stop`; a failed cycle is logged and retried at the next interval. Each run starts
        from the stored alert state (a standby taking over continues where the last evaluator stood)."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._loaded = False
        interval = self.settings.alerts.interval
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                try:
                    await self.cycle(client)
                    self.health.succeeded()
                except Exception as exc:
                    metrics.EVALUATION_FAILURES.labels("").inc()
                    self.health.failed(exc)
                    log.exception("event=alert_cycle_failed")
                self._wake.clear()
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
                await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
            await self.webhooks.drain(timeout=5.0)
        if self.alertmanager is not None:
            self.alertmanager.close()


async def run_alerts(evaluator: Evaluator, stop: asyncio.Event) -> None:
    """Background task for `triage serve`: evaluate alert rules every `alerts.interval` until stopped."""
    conf = evaluator.settings.alerts
    log.info(
        "event=alerts_started interval=%.1fs alertmanager=%s webhooks=%d",
        conf.interval,
        conf.alertmanager_url or "none",
        len(conf.webhooks),
    )
    await evaluator.run(stop)
