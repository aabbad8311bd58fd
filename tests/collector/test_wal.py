"""The write-ahead log: acknowledged means on disk; a crash at any moment loses nothing acknowledged,
and the replay after it writes nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector import Pipeline, Receiver, WriteAheadLog
from collector.wal import _encode
from tests.conftest import serve_command, serve_ports, start_server, unique_dsn
from triage.settings import Ingest
from triage.store import Store


def _request(trace_id: bytes, spans: int, service: str = "wal-test") -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    scope = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id = trace_id, os.urandom(8)
        span.name = f"step {i}"
        span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1_000_000
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "erp.po_number", f"45{i:08d}"
    return req.SerializeToString()


def _spans_by_trace(store: Store, trace_ids: list[bytes]) -> dict[str, int]:
    sql = "SELECT TraceId, count() FROM otel_traces WHERE TraceId IN {ids:Array(String)} GROUP BY TraceId"
    return {r[0]: int(r[1]) for r in store.query(sql, {"ids": [t.hex() for t in trace_ids]}).result_rows}


def test_group_commit_replay_and_checkpoint(tmp_path: Path) -> None:
    """Concurrent appends share fsyncs; what is not done is read back; done requests leave the log."""
    wal = WriteAheadLog(tmp_path / "wal", segment_bytes=64 * 1024)
    wal.start()
    payloads: dict[int, bytes] = {}
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(50):
            payload = f"{n}:{i};".encode() * 200
            seq, position = wal.append("traces", payload)
            wal.wait(position)
            with lock:
                payloads[seq] = payload

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = sorted(payloads)
    assert len(seqs) == 400, "every request has its own id"
    assert len(wal.segments()) > 2, "segments roll at segment_bytes"
    wal.done(seqs[:300])
    assert wal.outstanding == 100
    # A crash now: nothing closes the log. A new log on the same directory reads back the 100 left.
    again = WriteAheadLog(tmp_path / "wal")
    pending = again.replay()
    assert [r.seq for r in pending] == seqs[300:]
    assert all(r.signal == "traces" and r.payload == payloads[r.seq] for r in pending)
    again.start()
    again.done([r.seq for r in pending])
    again.close()
    assert again.segments() == [], "a log whose requests are all stored is removed at close"


def test_a_torn_last_record_is_discarded(tmp_path: Path) -> None:
    """A record cut short by a crash (never acknowledged) ends the read; the ones before it are kept."""
    directory = tmp_path / "wal"
    directory.mkdir()
    whole = _encode(1 << 12, 0, b"first") + _encode(2 << 12, 0, b"second")
    (directory / f"{1:020d}.wal").write_bytes(whole + _encode(3 << 12, 0, b"third")[:-3])
    assert [r.payload for r in WriteAheadLog(directory).replay()] == [b"first", b"second"]


def test_replay_writes_only_what_the_store_lacks(chdb_path: Path, tmp_path: Path) -> None:
    """Of three logged requests, one stored whole, one half-written, one missing: after the replay each
    is stored exactly once."""
    store = Store(unique_dsn(chdb_path))
    store.migrate()
    ingest = Ingest(batch_max_delay=0.05)
    wal_dir = tmp_path / "wal"
    traces = [os.urandom(16) for _ in range(3)]
    try:
        first = Pipeline(store, ingest, wal=WriteAheadLog(wal_dir))
        first.start()
        receiver = Receiver(first)
        for trace_id in traces[:2]:
            receiver.accept("traces", _request(trace_id, 40), "protobuf", "http")
        assert first.flush(30)
        first.shutdown()
        assert _spans_by_trace(store, traces) == {traces[0].hex(): 40, traces[1].hex(): 40}
        ids = {
            r[0]: int(r[1])
            for r in store.query(
                "SELECT TraceId, any(TriageRequest) FROM otel_traces WHERE TraceId IN {t:Array(String)} GROUP BY TraceId",
                {"t": [t.hex() for t in traces[:2]]},
            ).result_rows
        }
        assert all(ids.values()), "every row carries its request's id"
        # The log as a crash would leave it: the two stored requests (one of them only half written,
        # as a write cut short) and a third that never reached the store.
        store.command(
            "DELETE FROM otel_traces WHERE TraceId = {t:String} AND SpanName IN {names:Array(String)}",
            {"t": traces[1].hex(), "names": [f"step {i}" for i in range(25)]},
        )
        wal_dir.mkdir(exist_ok=True)
        records = [
            _encode(ids[traces[0].hex()], 0, _request(traces[0], 40)),
            _encode(ids[traces[1].hex()], 0, _request(traces[1], 40)),
            _encode(max(ids.values()) + (1 << 12), 0, _request(traces[2], 40)),
        ]
        (wal_dir / f"{1:020d}.wal").write_bytes(b"".join(records))

        second = Pipeline(store, ingest, wal=WriteAheadLog(wal_dir))
        second.start()
        assert second.flush(30)
        second.shutdown()
        counts = _spans_by_trace(store, traces)
        assert counts == {t.hex(): 40 for t in traces}, counts
        assert list(wal_dir.glob("*.wal")) == [], "everything replayed is stored, so the log is gone"
    finally:
        store.command(f"DROP DATABASE IF EXISTS `{store.target.database}`")


def test_kill_9_under_load_loses_no_acknowledged_span(tmp_path: Path) -> None:
    """Four clients send 64-span requests; the server is SIGKILLed mid-load and started again on the same
    data: every acknowledged span is stored, exactly once."""
    data = tmp_path / "data"
    ports = serve_ports()
    # A long batch delay keeps acknowledged requests in memory, so the kill finds some unwritten.
    env = {**os.environ, "TRIAGE_INGEST__BATCH_MAX_DELAY": "3s", "TRIAGE_INGEST__BATCH_MAX_ROWS": "1000000"}
    server = _serve(data, ports, env, tmp_path / "first.log")
    acknowledged: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                trace_id = os.urandom(16)
                try:
                    response = http.post(
                        f"http://127.0.0.1:{ports['http']}/v1/traces",
                        content=_request(trace_id, 64),
                        headers={"Content-Type": "application/x-protobuf"},
                    )
                except httpx.TransportError:
                    return  # the server is gone: this request was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(trace_id)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    time.sleep(4)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)
    stop.set()
    for c in clients:
        c.join(15)
    assert len(acknowledged) > 20, "the load ran"

    log_file = tmp_path / "second.log"
    server = _serve(data, ports, {**os.environ}, log_file)
    server.send_signal(signal.SIGTERM)  # a clean stop writes whatever the replay queued
    assert server.wait(60) == 0, log_file.read_text()
    output = log_file.read_text()
    assert "event=wal_replayed" in output, "the kill left acknowledged requests in the log only"
    counts = _count_spans(data, acknowledged, tmp_path)
    missing = [t.hex() for t in acknowledged if counts.get(t.hex(), 0) < 64]
    doubled = [t.hex() for t in acknowledged if counts.get(t.hex(), 0) > 64]
    assert missing == [] and doubled == [], f"{len(missing)} lost, {len(doubled)} duplicated of {len(acknowledged)}"


def _count_spans(data: Path, traces: list[bytes], tmp_path: Path) -> dict[str, int]:
    """Spans per trace in the store at `data`, read by a process of its own (chDB: one data path per process)."""
    ids = tmp_path / "traces.txt"
    ids.write_text("\n".join(t.hex() for t in traces))
    script = (
        "import json, sys\n"
        "from triage.store import Store\n"
        f"store = Store('chdb://{data}')\n"
        f"ids = open('{ids}').read().split()\n"
        "sql = 'SELECT TraceId, count() FROM otel_traces WHERE TraceId IN {ids:Array(String)} GROUP BY TraceId'\n"
        "print(json.dumps({r[0]: r[1] for r in store.query(sql, {'ids': ids}).result_rows}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _serve(data: Path, ports: dict[str, int], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    return start_server(serve_command(data, ports), ports, log_file, env)
