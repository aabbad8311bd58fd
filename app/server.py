"""`triage serve`: the API, OTLP/HTTP and OTLP/gRPC in one process on one store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import uvicorn

from alerts import run_alerts
from app.api import create_api_app
from app.listeners import guarded_protocol
from app.remote import leave_address
from app.runtime import Runtime
from collector import create_otlp_grpc_server, create_otlp_http_app, run_pollers, tail_sources
from correlator import run_correlator
from triage.settings import Settings

# A task that runs beside the servers until the stop event is set.
Background = Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, Any]]

log = logging.getLogger("triage")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _uvicorn(app: Any, settings: Settings, port: int) -> _Server:
    listen = settings.listen
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=int(max(1, listen.idle_timeout)),
        http=guarded_protocol(listen.header_timeout),
    )
    return _Server(config)


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Runtime], None] | None = None,
    background: list[Background] | None = None,
) -> None:
    """Run until `stop` is set (by default on SIGINT/SIGTERM); then stop accepting, flush, close."""
    runtime = Runtime.build(settings)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    grpc_server = create_otlp_grpc_server(
        runtime.receiver, settings.ingest, runtime.keys, settings.host, settings.otlp_grpc_port
    )
    api = _uvicorn(create_api_app(runtime), settings, settings.port)
    otlp = _uvicorn(
        create_otlp_http_app(runtime.receiver, settings.ingest, runtime.keys), settings, settings.otlp_http_port
    )
    grpc_server.start()
    tasks = [asyncio.create_task(api.serve()), asyncio.create_task(otlp.serve())]
    while not (api.started and otlp.started):
        if any(t.done() for t in tasks):
            stop.set()
            break
        await asyncio.sleep(0.02)
    extra = [asyncio.create_task(fn(runtime, stop)) for fn in [*_PARTS, *(background or [])]]
    address: Path | None = None
    if not stop.is_set():
        log.info(
            "event=serving api=http://%s:%d otlp_http=%s:%d otlp_grpc=%s:%d store=%s",
            settings.host,
            settings.port,
            settings.host,
            settings.otlp_http_port,
            settings.host,
            grpc_server.bound_port,
            runtime.store.target.describe(),
        )
        address = leave_address(settings, f"http://{_reachable(settings.host)}:{settings.port}")
        if on_ready:
            on_ready(runtime)
    await stop.wait()
    log.info("event=shutdown_started buffered_rows=%d", runtime.pipeline.buffered_rows)
    otlp.should_exit = True
    api.should_exit = True
    grpc_server.stop(grace=5).wait(6)
    for task in extra:
        task.cancel()
    await asyncio.gather(*tasks, *extra, return_exceptions=True)
    await asyncio.to_thread(runtime.close)
    if address is not None:
        with contextlib.suppress(OSError):
            address.unlink(missing_ok=True)
    log.info("event=shutdown_complete")
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception():
            raise task.exception()  # type: ignore[misc]


async def _evaluate_alerts(runtime: Runtime, stop: asyncio.Event) -> None:
    if runtime.evaluator is not None:
        await run_alerts(runtime.evaluator, stop)


# What every part runs in the background of `triage serve`, from the handles the runtime built.
_PARTS: list[Background] = [
    lambda runtime, stop: run_pollers(runtime.store, runtime.settings.queues, stop, runtime.pollers),
    lambda runtime, stop: tail_sources(runtime.settings.log_sources, runtime.receiver, runtime.store, stop),
    lambda runtime, stop: run_correlator(runtime.correlator, stop),
    _evaluate_alerts,
]


def _reachable(host: str) -> str:
    """The address a client on this machine uses for a server listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
