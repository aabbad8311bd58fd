"""Every HTTP listener closes connections that hold a slot and send nothing useful: one that never
sends a request, one that drips its headers (slowloris), one left idle after a response."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.conftest import LiveServer, server_settings


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_silent_slow_and_idle_connections_are_closed(chdb_path: Path) -> None:
    settings = server_settings(chdb_path, listen={"header_timeout": "1s", "idle_timeout": "1s"})
    server = LiveServer(settings).start()
    try:
        for port in (settings.port, settings.otlp_http_port):
            silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
            slow = socket.create_connection(("127.0.0.1", port))
            slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            for _ in range(3):  # a header byte now and then does not buy more time
                time.sleep(0.3)
                slow.sendall(b"X")
            assert all(_closed_by_server(s, 3) for s in silent), f"silent connections on :{port} stay open"
            assert _closed_by_server(slow, 3), f"a slow-header connection on :{port} stays open"
            assert time.monotonic() - started < 5
            for s in [*silent, slow]:
                s.close()
        # A well-behaved client is served, and its idle keep-alive connection is closed afterwards.
        with httpx.Client() as client:
            assert client.get(f"{server.api}/healthz").status_code == 200
            time.sleep(2.5)
            assert client.get(f"{server.api}/healthz").status_code == 200, "a new connection is opened"
    finally:
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")
