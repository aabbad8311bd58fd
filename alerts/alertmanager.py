"""Delivery to Prometheus Alertmanager through its API v2.

Firing alerts are posted with an `endsAt` a few resend intervals ahead and re-posted every
`alerts.resend_interval` (as Prometheus does), so Alertmanager keeps them while Triage runs and
lets them lapse if it stops; a resolved alert is posted once more with `endsAt` = its resolve time.
Triage's silences are mirrored as Alertmanager silences (tagged `[triage-silence:<id>]` in the
comment), so Alertmanager shows the alert as suppressed and sends nothing; a silenced alert is only
posted once its silence is mirrored.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from alerts import metrics
from alerts.alert import FIRING, RESOLVED, Alert
from alerts.silences import Silence
from alerts.webhooks import TargetStatus
from triage.settings import Alerts

log = logging.getLogger("triage.alerts")
TAG = re.compile(r"\[triage-silence:([0-9a-fA-F-]{36})\]")


def am_alert(alert: Alert, ends_at: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": (alert.fired_at or alert.active_since).isoformat(),
        "endsAt": ends_at.isoformat(),
    }
    if alert.dashboard_url.startswith(("http://", "https://")):
        body["generatorURL"] = alert.dashboard_url
    return body


class Alertmanager:
    """Posts alerts and mirrors silences; every failure is counted and retried next cycle."""

    def __init__(self, conf: Alerts) -> None:
        assert conf.alertmanager_url is not None
        self.url = conf.alertmanager_url.rstrip("/")
        self.conf = conf
        self.client = httpx.Client(timeout=conf.timeout)
        self.status = TargetStatus("alertmanager", self.url)
        self.mirrored: dict[str, str] = {}  # Triage silence id → Alertmanager silence id
        self._reconciled = False
        self._last_push: datetime | None = None
        self._last_sent: dict[str, tuple[str, str, int]] = {}

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.client.request(method, f"{self.url}{path}", **kwargs)
            response.raise_for_status()
            return response
        except httpx.HTTPError as exc:
            detail = exc.response.text[:200] if isinstance(exc, httpx.HTTPStatusError) else str(exc)
            self.status.failed_attempts += 1
            self.status.last_error = f"{method} {path}: {type(exc).__name__}: {detail}"
            self.status.last_error_at = datetime.now(UTC)
            metrics.DELIVERY_FAILURES.labels("alertmanager", self.url).inc()
            raise
        finally:
            metrics.DELIVERY_SECONDS.labels("alertmanager").observe(time.perf_counter() - started)

    def mirror_silences(self, silences: list[Silence], now: datetime) -> None:
        """Make Alertmanager's tagged silences equal Triage's current ones."""
        if not silences and not self.mirrored and self._reconciled:
            return
        try:
            theirs = self._call("GET", "/api/v2/silences").json()
            ours: dict[str, str] = {}
            for s in theirs:
                tag = TAG.search(s.get("comment", ""))
                if tag and s.get("status", {}).get("state") in ("active", "pending"):
                    ours[tag.group(1)] = s["id"]
            wanted = {s.id: s for s in silences if s.state_at(now) != "expired"}
            for sid, silence in wanted.items():
                if sid not in ours:
                    ours[sid] = self._create_silence(silence)
            for sid, am_id in list(ours.items()):
                if sid not in wanted:
                    self._call("DELETE", f"/api/v2/silence/{am_id}")
                    del ours[sid]
            self.mirrored = ours
            self._reconciled = True
        except httpx.HTTPError as exc:
            log.warning("event=alertmanager_silence_sync_failed url=%s error=%r", self.url, exc)

    def _create_silence(self, s: Silence) -> str:
        body = {
            "matchers": [
                {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal} for m in s.matchers
            ],
            "startsAt": s.starts_at.isoformat(),
            "endsAt": s.ends_at.isoformat(),
            "createdBy": s.created_by or "triage",
            "comment": f"{s.comment} [triage-silence:{s.id}]".strip(),
        }
        return str(self._call("POST", "/api/v2/silences", json=body).json()["silenceID"])

    def push(self, alerts: list[Alert], silenced: dict[str, list[str]], now: datetime) -> list[Alert]:
        """Post what is due; return the resolved alerts Alertmanager has now been told about."""
        horizon = now + timedelta(seconds=4 * max(self.conf.resend_interval, self.conf.interval))
        firing = [
            a
            for a in alerts
            if a.status == FIRING and all(sid in self.mirrored for sid in silenced.get(a.fingerprint, []))
        ]
        resolved = [a for a in alerts if a.status == RESOLVED and a.fired_at and not a.am_resolved_sent]
        signature = {a.fingerprint: (a.status, a.annotations.get("summary", ""), a.count) for a in firing + resolved}
        resend = self._last_push is None or (now - self._last_push).total_seconds() >= self.conf.resend_interval
        if not signature or (not resend and signature.items() <= self._last_sent.items()):
            return []
        body = [am_alert(a, horizon) for a in firing] + [am_alert(a, a.resolved_at or now) for a in resolved]
        try:
            self._call("POST", "/api/v2/alerts", json=body)
        except httpx.HTTPError as exc:
            metrics.NOTIFICATIONS.labels("alertmanager", "failed").inc()
            log.warning("event=alertmanager_push_failed url=%s alerts=%d error=%r", self.url, len(body), exc)
            return []
        metrics.NOTIFICATIONS.labels("alertmanager", "sent").inc()
        self.status.sent += 1
        self.status.last_success_at = now
        self._last_push, self._last_sent = now, signature
        return resolved
