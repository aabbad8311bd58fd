"""The running service's parts, built once from settings and shared by the API and receivers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.pipeline import Pipeline
from collector.receiver import Receiver
from collector.redaction import Redactor, load_key
from triage.auth import ApiKeys
from triage.settings import Settings
from triage.store import Store, parse_dsn

log = logging.getLogger("triage")


def build_redactor(settings: Settings) -> Redactor | None:
    """The PHI redactor from settings, or None when redaction is disabled."""
    conf = settings.redaction
    if not conf.enabled:
        log.warning("event=redaction_disabled hint='PHI in telemetry will be stored as sent'")
        return None
    target = parse_dsn(settings.store)
    default_file = (
        (Path(target.path) / "redaction.key")
        if target.embedded
        else (Path.home() / ".config" / "triage" / "redaction.key")
    )
    key_file = Path(conf.key_file) if conf.key_file else default_file
    key = load_key(conf.key_env, key_file)
    return Redactor(key, conf.patterns, settings.business_attribute_keys(), hl7=conf.hl7)


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
            log.info("event=migrations_applied store=%s versions=%s", store.target.describe(), ",".join(applied))
        pipeline = Pipeline(store, settings.ingest)
        pipeline.start()
        redactor = build_redactor(settings)
        return cls(settings, store, pipeline, Receiver(pipeline, redactor), ApiKeys(settings.api_keys))

    def close(self) -> None:
        self.pipeline.shutdown()
        self.store.close()
