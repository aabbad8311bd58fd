"""`triage serve` as its own process for benchmarks: free ports, a fresh store, stopped on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import serve_command, serve_ports


@dataclass(frozen=True)
class Server:
    pid: int
    api: str
    otlp_http: str


@contextmanager
def running_server(
    data_dir: Path, config_file: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start `triage serve` (with `env` added), wait until /readyz answers 200, SIGTERM it (kill after 60 s) at exit."""
    ports = serve_ports()
    command = [*serve_command(data_dir, ports), "--log-level", "warning"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    process = subprocess.Popen(
        command,
        env={**os.environ, "TRIAGE_REDACTION_KEY": "bench", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(process.pid, f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['http']}")
    try:
        _wait_ready(server.api, process)
        yield server
    finally:
        stop_process(process, signal.SIGTERM, 60)


def stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send `sig`, give the process `timeout` seconds to exit, then kill it."""
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_ready(api: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"triage serve exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(f"{api}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("triage serve did not become ready in 60 s")
