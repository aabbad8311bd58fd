"""`triage serve` as its own process for benchmarks: free ports, a fresh store, stopped on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port


@dataclass(frozen=True)
class Server:
    pid: int
    api: str
    otlp_http: str


@contextmanager
def running_server(data_dir: Path, config_file: Path | None = None) -> Iterator[Server]:
    """Start `triage serve`, wait until /readyz answers 200, SIGTERM it (kill after 60 s) at exit."""
    ports = {"api": free_port(), "http": free_port(), "grpc": free_port()}
    command = [
        sys.executable,
        "-m",
        "triage.cli",
        "serve",
        "--store",
        f"chdb://{data_dir}",
        "--port",
        str(ports["api"]),
        "--otlp-http-port",
        str(ports["http"]),
        "--otlp-grpc-port",
        str(ports["grpc"]),
        "--log-level",
        "warning",
    ]
    if config_file is not None:
        command += ["--config", str(config_file)]
    process = subprocess.Popen(
        command,
        env={**os.environ, "TRIAGE_REDACTION_KEY": "bench"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(process.pid, f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['http']}")
    try:
        _wait_ready(server.api, process)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
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
