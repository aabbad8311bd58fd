"""Shared fixtures: one embedded ClickHouse data path per test process, isolated by database name.

chDB allows one data path per process, so every test that needs a store uses `chdb_path` and a
database of its own; servers under test run in a thread of this process on free loopback ports
(or, for the CLI itself, as a subprocess with its own data directory).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from triage.settings import Settings, load_settings
from triage.store import Store

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRIAGE = [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_ports() -> dict[str, int]:
    """Free loopback ports for a `triage serve` subprocess: its API, OTLP/HTTP and OTLP/gRPC."""
    return {"api": free_port(), "http": free_port(), "grpc": free_port()}


def serve_command(data_dir: Path, ports: dict[str, int]) -> list[str]:
    """`triage serve` as its own process, on an embedded store in `data_dir` and the `serve_ports()` given."""
    return [
        *TRIAGE,
        "serve",
        "--store",
        f"chdb://{data_dir}",
        "--port",
        str(ports["api"]),
        "--otlp-http-port",
        str(ports["http"]),
        "--otlp-grpc-port",
        str(ports["grpc"]),
    ]


def start_server(
    command: list[str],
    ports: dict[str, int],
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90,
) -> subprocess.Popen[bytes]:
    """A server process (its output appended to `log_file`), returned once its /readyz answers 200."""
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{ports['api']}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"the server exited early: {log_file.read_text()[-3000:]}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the server did not become ready in {timeout:.0f} s: {log_file.read_text()[-3000:]}")


def serve_posts(answer: Callable[[BaseHTTPRequestHandler], int]) -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port, serving in a daemon thread: every POST is handed to
    `answer`, which reads what it needs and returns the status code sent back (with an empty body)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            code = answer(self)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared sample data is missing at {SHARED_DATA}; it sits beside the repo as ../shared")
    return SHARED_DATA


def unique_dsn(chdb_path: Path) -> str:
    return f"chdb://{chdb_path}?database=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(chdb_path: Path) -> Iterator[Store]:
    s = Store(unique_dsn(chdb_path))
    s.migrate()
    yield s
    s.command(f"DROP DATABASE IF EXISTS `{s.target.database}`")


class LiveServer:
    """`triage serve` running in a thread of this process, on its own database and free ports."""

    def __init__(self, settings: Settings) -> None:
        from app.server import serve

        self.settings = settings
        self.runtime: Runtime | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(runtime: Runtime) -> None:
                self.runtime = runtime
                self._ready.set()

            await serve(settings, stop=self._stop, on_ready=ready)

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # surfaced to the test by start()
                self.error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name="live-server", daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(60) or self.error:
            raise RuntimeError(f"server did not start: {self.error!r}")
        return self

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.settings.otlp_http_port}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.settings.otlp_grpc_port}"

    @property
    def store(self) -> Store:
        assert self.runtime is not None
        return self.runtime.store

    def flush(self) -> None:
        assert self.runtime is not None
        assert self.runtime.pipeline.flush(30), "pipeline did not flush within 30 s"

    def stop(self) -> None:
        if self._loop and self._stop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def server_settings(chdb_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": unique_dsn(chdb_path),
        "host": "127.0.0.1",
        "port": free_port(),
        "otlp_http_port": free_port(),
        "otlp_grpc_port": free_port(),
    }
    values.update(overrides)
    return load_settings(None, values, environ={})


@pytest.fixture
def live_server(chdb_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(server_settings(chdb_path)).start()
    yield server
    server.stop()
    server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")
