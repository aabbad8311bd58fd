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
from triage.leases import Lease, holder_name, store_lease, while_held
from triage.settings import Settings
from triage.vocabulary import ROLES, Role

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
    missing = [str(r) for r in ROLES if r not in settings.roles]
    if missing and runtime.store.target.embedded:
        log.warning(
            "event=roles_without_peers missing=%s hint='no other process can open the embedded store, so no one "
            "runs these parts: give them to this process, or use a ClickHouse server (docs/operations.md)'",
            ",".join(missing),
        )
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    collecting = runtime.has(Role.COLLECTOR)
    api = _uvicorn(create_api_app(runtime), settings, settings.port)
    servers = [api]
    grpc_server = None
    if collecting:
        grpc_server = create_otlp_grpc_server(
            runtime.receiver, settings.ingest, runtime.keys, settings.host, settings.otlp_grpc_port
        )
        servers.append(
            _uvicorn(
                create_otlp_http_app(runtime.receiver, settings.ingest, runtime.keys), settings, settings.otlp_http_port
            )
        )
        grpc_server.start()
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        if any(t.done() for t in tasks):
            stop.set()
            break
        await asyncio.sleep(0.02)
    parts = [part for role, part in _PARTS if runtime.has(role)]
    extra = [asyncio.create_task(fn(runtime, stop)) for fn in [*parts, *(background or [])]]
    address: Path | None = None
    if not stop.is_set():
        log.info(
            "event=serving roles=%s shard=%s api=http://%s:%d otlp_http=%s otlp_grpc=%s store=%s",
            ",".join(settings.roles),
            settings.shard,
            settings.host,
            settings.port,
            f"{settings.host}:{settings.otlp_http_port}" if collecting else "off",
            f"{settings.host}:{grpc_server.bound_port}" if grpc_server else "off",
            runtime.store.target.describe(),
        )
        address = leave_address(settings, f"http://{_reachable(settings.host)}:{settings.port}")
        if on_ready:
            on_ready(runtime)
    await stop.wait()
    log.info("event=shutdown_started buffered_rows=%d", runtime.pipeline.buffered_rows)
    for server in servers:
        server.should_exit = True
    if grpc_server is not None:
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


def _lease(runtime: Runtime, name: str, interval: float) -> Lease:
    ttl = max(runtime.settings.correlation.lease_ttl, 3 * interval)
    return store_lease(runtime.store, name, holder_name(name), ttl)


async def _evaluate_alerts(runtime: Runtime, stop: asyncio.Event) -> None:
    """One alert evaluator at a time across processes: the holder of the `alerts` lease; others stand by."""
    evaluator = runtime.evaluator
    if evaluator is not None:
        lease = _lease(runtime, "alerts", runtime.settings.alerts.interval)
        await while_held(lease, stop, lambda held_stop: run_alerts(evaluator, held_stop))


async def _poll_queues(runtime: Runtime, stop: asyncio.Event) -> None:
    """One collector polls the brokers at a time (the `pollers` lease): N collectors, not N× the samples."""
    queues = runtime.settings.queues
    if any(q.kind != "push" for q in queues):
        lease = _lease(runtime, "pollers", max((q.interval for q in queues), default=5.0))
        await while_held(lease, stop, lambda held_stop: run_pollers(runtime.store, queues, held_stop, runtime.pollers))


async def _correlate(runtime: Runtime, stop: asyncio.Event) -> None:
    if runtime.worker is not None:
        await run_correlator(runtime.worker, stop)


# What each role runs in the background of `triage serve`, from the handles the runtime built.
_PARTS: list[tuple[Role, Background]] = [
    (Role.COLLECTOR, _poll_queues),
    (
        Role.COLLECTOR,
        lambda runtime, stop: tail_sources(runtime.settings.log_sources, runtime.receiver, runtime.store, stop),
    ),
    (Role.CORRELATOR, _correlate),
    (Role.ALERTS, _evaluate_alerts),
]


def _reachable(host: str) -> str:
    """The address a client on this machine uses for a server listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
