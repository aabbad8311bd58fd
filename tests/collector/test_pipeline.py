"""The write pipeline against a real store that fails: nothing accepted is lost."""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from collector.pipeline import Pipeline
from collector.validate import validate_logs
from triage.settings import Ingest
from triage.store import Store


def _logs(n: int, body: str) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    kv = rl.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "mirth"
    records = rl.scope_logs.add().log_records
    for i in range(n):
        record = records.add()
        record.time_unix_nano = time.time_ns()
        record.body.string_value = f"{body} {i}"
    return req


def _count(store: Store) -> int:
    return int(store.command("SELECT count() FROM otel_logs"))


def test_batches_by_size_and_time(store: Store) -> None:
    pipeline = Pipeline(store, Ingest(batch_max_rows=100, batch_max_delay=0.3))
    pipeline.start()
    try:
        pipeline.submit(validate_logs(_logs(150, "big")))
        deadline = time.time() + 0.25
        while _count(store) < 150 and time.time() < deadline:
            time.sleep(0.01)
        assert _count(store) == 150, "a batch over batch_max_rows is written without waiting for the delay"
        pipeline.submit(validate_logs(_logs(3, "small")))
        time.sleep(0.05)
        assert _count(store) == 150, "a small batch waits for batch_max_delay"
        assert pipeline.flush(5)
        assert _count(store) == 153
    finally:
        pipeline.shutdown()


def test_unwritable_store_spools_at_shutdown_and_replays_at_start(store: Store, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    ingest = Ingest(batch_max_delay=0.05, spool_dir=str(spool_dir))
    store.command("RENAME TABLE otel_logs TO otel_logs_away")  # the store now refuses every log insert
    pipeline = Pipeline(store, ingest)
    pipeline.start()
    pipeline.submit(validate_logs(_logs(5, "kept")))
    time.sleep(0.5)
    assert "otel_logs" in pipeline.last_error
    assert pipeline.buffered_rows == 5
    pipeline.shutdown(timeout=2)
    assert len(list(spool_dir.glob("*.spool"))) == 1

    store.command("RENAME TABLE otel_logs_away TO otel_logs")
    replay = Pipeline(store, ingest)
    replay.start()
    try:
        assert replay.flush(10)
        rows = store.query("SELECT Body FROM otel_logs ORDER BY Body").result_rows
        assert [r[0] for r in rows] == [f"kept {i}" for i in range(5)]
        assert list(spool_dir.glob("*.spool")) == []
    finally:
        replay.shutdown()
