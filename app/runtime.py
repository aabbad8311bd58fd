"""The running service's parts, built once from settings: the store, the write pipeline and
receiver, the correlator and the alert evaluator. The server, the API and the CLI share one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from alerts import Evaluator
from collector import Pipeline, Receiver, Redactor, WriteAheadLog, load_redaction_key
from correlator import Correlator, ShardWorker
from triage import targets
from triage.auth import ApiKeys, KeySpec
from triage.health import TaskHealth
from triage.settings import Settings, Shard
from triage.store import Store
from triage.vocabulary import Role

log = logging.getLogger("triage")


def build_redactor(settings: Settings) -> Redactor | None:
    """The PHI redactor from settings, or None when redaction is disabled."""
    conf = settings.redaction
    if not conf.enabled:
        log.warning("event=redaction_disabled hint='PHI in telemetry will be stored as sent'")
        return None
    target = Store.from_settings(settings).target
    default_file = (
        (Path(target.path) / "redaction.key")
        if target.embedded
        else (Path.home() / ".config" / "triage" / "redaction.key")
    )
    key_file = Path(conf.key_file) if conf.key_file else default_file
    key = load_redaction_key(conf.key_env, key_file)
    return Redactor(key, conf.patterns, settings.business_attribute_keys(), hl7=conf.hl7)


def api_keys(settings: Settings) -> ApiKeys:
    """The keys, their scopes and the trusted proxies from settings."""
    specs = [k if isinstance(k, str) else KeySpec(k.key, tuple(k.scopes), k.name) for k in settings.api_keys]
    conf = settings.auth
    return ApiKeys(
        specs,
        trusted_proxies=conf.trusted_proxies,
        user_header=conf.user_header,
        proxy_scopes=conf.proxy_scopes,
        session_seconds=conf.session,
    )


def wal_directory(settings: Settings) -> Path:
    """Where the write-ahead log lives: ingest.wal.dir, else wal/<database> in the embedded store's
    directory, else ./data/wal/<database> (one log per database: it is replayed into that database)."""
    if settings.ingest.wal.dir:
        return Path(settings.ingest.wal.dir)
    target = Store.from_settings(settings).target
    base = Path(target.path) if target.embedded else Path("data")
    return base / "wal" / (target.database or "default")


def build_wal(settings: Settings) -> WriteAheadLog | None:
    """The write-ahead log from settings, or None when it is switched off."""
    conf = settings.ingest.wal
    if not conf.enabled:
        log.warning("event=wal_disabled hint='acknowledged requests still in memory are lost if the process dies'")
        return None
    return WriteAheadLog(wal_directory(settings), segment_bytes=conf.segment_bytes, sync=conf.sync)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    pipeline: Pipeline
    receiver: Receiver
    keys: ApiKeys
    # What replays use: the worker's own correlator when it owns every transaction, else one with
    # scratch tables of its own (a replay rebuilds every shard's transactions).
    correlator: Correlator
    worker: ShardWorker | None  # the correlator role: this process's shards
    evaluator: Evaluator | None  # the alerts role (it evaluates while it holds the alerts lease)
    # A broker that is down is a queue's status, not a failure; the store refusing samples is.
    pollers: TaskHealth = field(default_factory=lambda: TaskHealth("queue pollers"))

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Open the store, apply migrations and start the write pipeline."""
        store = Store.from_settings(settings)
        applied = store.migrate()
        if applied:
            log.info("event=migrations_applied store=%s versions=%s", store.target.describe(), ",".join(applied))
        if Role.CORRELATOR in settings.roles:
            targets.record(store, settings)  # what the report's snapshot judges cycle times by
        pipeline = Pipeline(store, settings.ingest, wal=build_wal(settings))
        pipeline.start()
        roles = set(settings.roles)
        worker = ShardWorker(store, settings) if Role.CORRELATOR in roles else None
        if worker is not None and settings.shard.count == 1:
            correlator = worker.correlator  # the background loop and the replay API share its lock
        else:
            correlator = Correlator(store, settings, Shard(), scratch="replay")
        return cls(
            settings,
            store,
            pipeline,
            Receiver(pipeline, build_redactor(settings), settings.retention.raw_days),
            api_keys(settings),
            correlator,
            worker,
            Evaluator(store, settings) if settings.alerts.enabled and Role.ALERTS in roles else None,
        )

    def has(self, role: Role) -> bool:
        return role in self.settings.roles

    def failing_tasks(self) -> list[str]:
        """The background tasks failing cycle after cycle, each with why."""
        tasks = [
            *([self.worker.health] if self.worker else []),
            *([self.pollers] if self.has(Role.COLLECTOR) else []),
            *([self.evaluator.health] if self.evaluator else []),
        ]
        failing = [p for p in (t.problem() for t in tasks) if p]
        if self.pipeline.last_error:
            waiting = self.pipeline.buffered_rows
            failing.append(f"store writes: failing, retried ({waiting} rows waiting): {self.pipeline.last_error}")
        return failing

    def close(self) -> None:
        self.pipeline.shutdown()
        if self.worker is not None:
            self.worker.close()  # a history read beside the cycles must end before the store closes
        self.store.close()
