"""A full disk, for real: a small filesystem (tmpfs) holds the store and the write-ahead log, and is
filled to the last byte while clients send. Nothing is acknowledged that is not on disk (requests get
503 with Retry-After), /readyz says not ready and why, and once space is freed everything acknowledged
lands, without a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.collector.test_wal import _count_spans, _request
from tests.conftest import serve_command, serve_ports, start_server


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs and needs root: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class Filler:
    """Keeps a filesystem full: writes until it refuses, and again whenever space frees (segments deleted,
    parts merged), until stopped; then removes its file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "filler"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        self._stop = threading.Event()
        self._fill()
        self._thread = threading.Thread(target=self._keep_full, daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(self._fd, b"\0" * size)
            except OSError:
                pass

    def _keep_full(self) -> None:
        while not self._stop.wait(0.01):
            self._fill()

    def free(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self._fd)
        self.path.unlink()


def test_a_full_disk_refuses_new_work_and_loses_nothing_acknowledged(small_disk: Path, tmp_path: Path) -> None:
    data = small_disk / "data"
    ports = serve_ports()
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "TRIAGE_INGEST__BATCH_MAX_DELAY": "100ms", "TRIAGE_CORRELATION__ENABLED": "false"}
    server = start_server(serve_command(data, ports), ports, log_file, env)
    api, otlp = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['http']}/v1/traces"
    acknowledged: list[bytes] = []
    refused: list[tuple[int, str]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                trace_id = os.urandom(16)
                r = http.post(otlp, content=_request(trace_id, 32), headers={"Content-Type": "application/x-protobuf"})
                if r.status_code == 200:
                    acknowledged.append(trace_id)
                else:
                    refused.append((r.status_code, r.headers.get("Retry-After", "")))
                    time.sleep(0.05)

    try:
        clients = [threading.Thread(target=client) for _ in range(2)]
        for c in clients:
            c.start()
        time.sleep(1)
        before = len(acknowledged)
        filler = Filler(small_disk)
        time.sleep(3)
        full = httpx.get(f"{api}/readyz", timeout=10)
        during = len(acknowledged)
        time.sleep(3)
        refused_while_full, acknowledged_while_full = len(refused), len(acknowledged) - during
        filler.free()  # space comes back: no restart
        deadline = time.time() + 30
        while httpx.get(f"{api}/readyz", timeout=10).status_code != 200 and time.time() < deadline:
            time.sleep(0.5)
        ready_again = httpx.get(f"{api}/readyz", timeout=10)
        time.sleep(1)
        stop.set()
        for c in clients:
            c.join(30)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert before > 0, "requests were acknowledged before the disk filled"
    assert full.status_code == 503, full.text
    assert full.json()["failing"] or full.json()["last_write_error"], full.text
    assert refused_while_full > 0 and all(code == 503 and retry for code, retry in refused), refused[:5]
    assert acknowledged_while_full == 0, "nothing is acknowledged while the disk is full"
    assert ready_again.status_code == 200, ready_again.text
    assert len(acknowledged) > during, "work is acknowledged again once space is back"
    counts = _count_spans(data, acknowledged, tmp_path)
    lost = [t.hex() for t in acknowledged if counts.get(t.hex(), 0) != 32]
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged requests not stored exactly once"
