"""Generic webhooks: one JSON message per alert and status, HMAC-SHA256 signed, retried with backoff.

Each message has a delivery id that is stable for (target, alert episode, status): a restart never
sends a delivered message again, and a receiver can de-duplicate on `X-Triage-Delivery` should a
success response be lost. A message that fails every attempt (or is refused with a 4xx other than
408/429) goes to `alert_dead_letters`, is counted in /metrics and listed by the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from alerts import metrics
from alerts.alert import FIRING, RESOLVED, Alert
from alerts.state import event, record
from triage.settings import Alerts, Webhook
from triage.store import Store

log = logging.getLogger("triage.alerts")
SIGNATURE_HEADER = "X-Triage-Signature-256"
DEAD_COLUMNS = [
    "At",
    "DeliveryId",
    "Channel",
    "Target",
    "Fingerprint",
    "Rule",
    "Status",
    "Attempts",
    "LastError",
    "Payload",
]


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def delivery_id(target: str, alert: Alert, status: str) -> str:
    return hashlib.sha256(f"{target}|{alert.episode}|{status}".encode()).hexdigest()[:32]


def payload(alert: Alert, status: str, ident: str, now: datetime) -> dict[str, Any]:
    return {
        "version": "1",
        "source": "triage",
        "delivery_id": ident,
        "status": status,
        "sent_at": now.isoformat(),
        "alert": {
            "fingerprint": alert.fingerprint,
            "rule": alert.rule,
            "severity": alert.severity,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "starts_at": alert.fired_at.isoformat() if alert.fired_at else None,
            "ends_at": alert.resolved_at.isoformat() if status == RESOLVED and alert.resolved_at else None,
            "count": alert.count,
            "value_at_risk": alert.value,
            "dashboard_url": alert.dashboard_url,
            "transactions": alert.keys,
        },
    }


@dataclass
class Delivery:
    ident: str
    hook: Webhook
    alert: Alert
    status: str


@dataclass
class TargetStatus:
    """What GET /api/v1/alerts/deliveries says about one channel target."""

    channel: str
    target: str
    sent: int = 0
    failed_attempts: int = 0
    dead_letters: int = 0
    retrying: int = 0
    last_error: str = ""
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None


@dataclass
class WebhookDispatcher:
    """Plans which webhook messages are due and delivers them in background tasks."""

    store: Store
    conf: Alerts
    done: dict[str, str] = field(default_factory=dict)  # delivery id → delivered | dead_letter
    inflight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    status: dict[str, TargetStatus] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for hook in self.conf.webhooks:
            self.status[hook.url] = TargetStatus("webhook", hook.url)

    def plan(self, alerts: list[Alert], silenced: set[str]) -> list[Delivery]:
        """Firing alerts not silenced, once per episode; resolutions of what was delivered firing."""
        due = []
        for alert in alerts:
            for hook in self.conf.webhooks:
                firing = delivery_id(hook.url, alert, FIRING)
                if alert.status == FIRING and alert.fingerprint not in silenced:
                    due.append(Delivery(firing, hook, replace(alert), FIRING))
                elif alert.status == RESOLVED and hook.send_resolved and self.done.get(firing) == "delivered":
                    due.append(Delivery(delivery_id(hook.url, alert, RESOLVED), hook, replace(alert), RESOLVED))
        return [d for d in due if d.ident not in self.done and d.ident not in self.inflight]

    def submit(self, deliveries: list[Delivery], client: httpx.AsyncClient) -> None:
        for d in deliveries:
            task = asyncio.create_task(self._deliver(d, client), name=f"webhook-{d.ident[:8]}")
            self.inflight[d.ident] = task
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.inflight = {k: t for k, t in self.inflight.items() if t is not task}
        if not task.cancelled() and task.exception() is not None:
            log.error("event=webhook_task_failed error=%r", task.exception())

    async def drain(self, timeout: float) -> None:
        """Wait for deliveries in flight (at shutdown); what is left is retried after the restart."""
        tasks = list(self.inflight.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            task.cancel()

    def _backoff(self, attempt: int) -> float:
        delay = min(self.conf.webhook_backoff * 2 ** (attempt - 1), self.conf.webhook_backoff_max)
        return delay * random.uniform(0.9, 1.1)

    async def _deliver(self, d: Delivery, client: httpx.AsyncClient) -> None:
        status = self.status[d.hook.url]
        secret = os.environ.get(d.hook.secret_env) if d.hook.secret_env else None
        error = ""
        attempt = 0
        while attempt < self.conf.webhook_max_attempts:
            attempt += 1
            if d.hook.secret_env and not secret:
                error = f"environment variable {d.hook.secret_env} is not set; export the webhook secret there"
                break
            error, permanent, retry_after = await self._attempt(d, client, secret)
            if not error:
                await self._delivered(d, status, attempt)
                return
            metrics.DELIVERY_FAILURES.labels("webhook", d.hook.url).inc()
            status.failed_attempts += 1
            status.last_error, status.last_error_at = error, datetime.now(UTC)
            log.warning(
                "event=webhook_attempt_failed target=%s rule=%s delivery=%s attempt=%d error=%r",
                d.hook.url,
                d.alert.rule,
                d.ident,
                attempt,
                error,
            )
            if permanent:
                break
            if attempt < self.conf.webhook_max_attempts:
                metrics.NOTIFICATIONS.labels("webhook", "retried").inc()
                status.retrying += 1
                try:
                    await asyncio.sleep(min(retry_after or self._backoff(attempt), self.conf.webhook_backoff_max))
                finally:
                    status.retrying -= 1
        await self._dead_letter(d, status, attempt, error)

    async def _attempt(
        self, d: Delivery, client: httpx.AsyncClient, secret: str | None
    ) -> tuple[str, bool, float | None]:
        """One POST: ("", ...) on success, else (error, permanent?, Retry-After seconds)."""
        body = json.dumps(payload(d.alert, d.status, d.ident, datetime.now(UTC))).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "triage-alerts/0.1",
            "X-Triage-Delivery": d.ident,
            "X-Triage-Event": d.status,
        }
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret.encode(), body)
        started = time.perf_counter()
        try:
            response = await client.post(d.hook.url, content=body, headers=headers, timeout=self.conf.timeout)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}", False, None
        finally:
            metrics.DELIVERY_SECONDS.labels("webhook").observe(time.perf_counter() - started)
        if response.status_code < 300:
            return "", False, None
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        return f"HTTP {response.status_code}: {response.text[:200]}", permanent, _retry_after(response)

    async def _delivered(self, d: Delivery, status: TargetStatus, attempts: int) -> None:
        self.done[d.ident] = "delivered"
        status.sent += 1
        status.last_success_at = datetime.now(UTC)
        metrics.NOTIFICATIONS.labels("webhook", "sent").inc()
        detail = f"{d.status} after {attempts} attempt(s)"
        row = event(datetime.now(UTC), d.alert, "delivered", f"webhook:{d.hook.url}", d.ident, detail)
        await asyncio.to_thread(record, self.store, [row])
        log.info(
            "event=webhook_delivered target=%s rule=%s status=%s attempts=%d",
            d.hook.url,
            d.alert.rule,
            d.status,
            attempts,
        )

    async def _dead_letter(self, d: Delivery, status: TargetStatus, attempts: int, error: str) -> None:
        self.done[d.ident] = "dead_letter"
        status.dead_letters += 1
        metrics.NOTIFICATIONS.labels("webhook", "dead_letter").inc()
        metrics.DEAD_LETTERS.labels("webhook", d.hook.url).inc()
        now = datetime.now(UTC)
        body = json.dumps(payload(d.alert, d.status, d.ident, now))
        row = [now, d.ident, "webhook", d.hook.url, d.alert.fingerprint, d.alert.rule, d.status, attempts, error, body]
        ev = event(now, d.alert, "dead_letter", f"webhook:{d.hook.url}", d.ident, error[:500])

        def write() -> None:
            self.store.insert("alert_dead_letters", [row], DEAD_COLUMNS)
            record(self.store, [ev])

        await asyncio.to_thread(write)
        log.error(
            "event=webhook_dead_letter target=%s rule=%s delivery=%s attempts=%d error=%r",
            d.hook.url,
            d.alert.rule,
            d.ident,
            attempts,
            error,
        )


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


_DEAD = """
SELECT At, DeliveryId, Channel, Target, Fingerprint, Rule, Status, Attempts, LastError FROM alert_dead_letters
ORDER BY At DESC LIMIT {limit:UInt32}
"""


def dead_letters(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    names = ["at", "delivery_id", "channel", "target", "fingerprint", "rule", "status", "attempts", "last_error"]
    return [dict(zip(names, r, strict=True)) for r in store.query(_DEAD, {"limit": limit}).result_rows]
