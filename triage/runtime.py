"""The running service's parts, built once from settings and shared by the API and receivers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from collector.pipeline import Pipeline
from collector.receiver import Receiver
from triage.auth import ApiKeys
from triage.settings import Settings
from triage.store import Store

log = logging.getLogger("triage")


@dataclass
class Runtime:
    settings: Settings
    store: Store
    pipeline: Pipeline
    receiver: Receiver
    keys: ApiKeys
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Open the store, apply migrations and start the write pipeline."""
        store = Store(
            settings.store,
            cluster=settings.cluster,
            raw_ttl_days=settings.retention.raw_days,
            business_ttl_days=settings.retention.business_days,
        )
        applied = store.migrate()
        if applied:
            log.info(
                "event=migrations_applied store=%s versions=%s", store.target.describe(), ",".join(applied)
            )
        pipeline = Pipeline(store, settings.ingest)
        pipeline.start()
        return cls(settings, store, pipeline, Receiver(pipeline), ApiKeys(settings.api_keys))

    def close(self) -> None:
        self.pipeline.shutdown()
        self.store.close()
