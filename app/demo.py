"""`triage demo`: `triage serve` plus a simulated hospital network that sends it real telemetry."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import checked
from simulator import DEFAULT_AMQP, DemoOptions
from triage.durations import parse_duration
from triage.errors import ConfigError
from triage.settings import Settings

if TYPE_CHECKING:  # the demo's own modules load when it runs, not with every `triage` command
    from rich.console import Console

    from simulator import Simulation, Summary

_FLAGS = ("store", "host", "port", "otlp_http_port", "otlp_grpc_port", "log_level")
DEFAULT_SPEED = 40.0
DEFAULT_BACKFILL = "2d"


def register(
    subparsers: Any,
    common: Callable[[argparse.ArgumentParser], None],
    serving: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `triage demo` to the command line."""
    demo = subparsers.add_parser(
        "demo",
        help="serve plus a simulated hospital network with injected faults (start here)",
        description="Run Triage with a simulated health-system integration estate that sends it real "
        "OpenTelemetry traces and logs, queue traffic and injected faults. Every flag is also a TRIAGE_<NAME> "
        "environment variable. See docs/demo.md.",
    )
    common(demo)
    serving(demo)
    env = os.environ.get
    demo.add_argument(
        "--duration",
        type=_seconds,
        default=env("TRIAGE_DURATION"),
        metavar="S",
        help="stop after S seconds (60, 10m; default: until Ctrl-C)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=env("TRIAGE_SPEED", str(DEFAULT_SPEED)),
        metavar="X",
        help="simulated seconds per wall-clock second (default 40): SLAs and delays are divided by X",
    )
    demo.add_argument(
        "--truth",
        metavar="FILE",
        default=env("TRIAGE_TRUTH"),
        help="write the ground truth here, one JSON object per transaction (rewritten every 2 s)",
    )
    demo.add_argument("--seed", type=int, default=env("TRIAGE_SEED"), help="random seed (default: a new one each run)")
    demo.add_argument(
        "--backfill",
        type=_seconds,
        default=env("TRIAGE_BACKFILL", DEFAULT_BACKFILL),
        metavar="D",
        help="history written at start with past timestamps (default 2d; 0 for none)",
    )
    demo.add_argument(
        "--broker",
        choices=["auto", "rabbitmq", "memory"],
        default=env("TRIAGE_BROKER", "auto"),
        help="queues on RabbitMQ, in memory, or RabbitMQ when it answers (default auto)",
    )
    demo.add_argument(
        "--amqp-url",
        default=env("TRIAGE_AMQP_URL", DEFAULT_AMQP),
        metavar="URL",
        help=f"RabbitMQ to use (default {DEFAULT_AMQP})",
    )
    demo.set_defaults(func=cmd_demo)


def _seconds(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo until --duration is over or Ctrl-C; print the summary; clean up."""
    from rich.console import Console

    from simulator import (
        Simulation,
        Summary,
        business_settings,
        check_backfill,
        choose_broker,
        declare_queues,
        delete_queues,
        demo_config,
        demo_settings,
        load_scenario,
        make_workdir,
    )
    from triage import logsetup

    console = Console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(width=140)  # CI logs: room for the tables
    options = DemoOptions(
        speed=float(args.speed),
        duration=float(args.duration) if args.duration is not None else None,
        truth=Path(args.truth).resolve() if args.truth else None,
        seed=int(args.seed) if args.seed is not None else None,
        backfill=float(args.backfill),
        broker=args.broker,
        amqp_url=args.amqp_url,
        run_id=uuid.uuid4().hex[:8],
    )
    flags = {n: getattr(args, n) for n in _FLAGS if getattr(args, n, None) is not None}
    workdir = make_workdir()
    queues: list[str] = []
    rabbit_url = None
    try:
        rabbit_url = choose_broker(options)
        base = demo_config(options.speed, options.run_id, rabbit_url, date.today())
        settings = checked(demo_settings(base, getattr(args, "config", None), flags, workdir))
        check_backfill(options, settings)
        _check_ports(settings)
        if rabbit_url:
            queues = [q.queue for q in settings.queues if q.kind == "rabbitmq" and q.queue]
            declare_queues(rabbit_url, queues)
        quiet = "log_level" not in flags and not os.environ.get("TRIAGE_LOG_LEVEL")
        logsetup.configure("warning" if quiet else settings.log_level, settings.log_format)
        simulation = Simulation(settings, business_settings(), load_scenario(), options)
        summary = Summary(simulation, simulation.endpoints()[1], console)
        asyncio.run(_serve(settings, simulation, summary, console, workdir))
        if not console.is_terminal:  # a terminal keeps the live summary's last frame
            console.print(summary.render())
        if options.truth:
            figures = summary.snapshot.forecasts
            if figures is not None and figures.by_step:  # where the forecasts' misses come from
                console.print("Breach forecasts by step:\n  " + "\n  ".join(figures.table()), highlight=False)
            console.print(f"ground truth: {options.truth}")
        return 1 if simulation.status.error else 0
    finally:
        if rabbit_url and queues:
            delete_queues(rabbit_url, queues)
        shutil.rmtree(workdir, ignore_errors=True)


def _check_ports(settings: Settings) -> None:
    """Say which port is taken before anything starts (the demo's default ports are serve's)."""
    for flag, port in (
        ("--port", settings.port),
        ("--otlp-http-port", settings.otlp_http_port),
        ("--otlp-grpc-port", settings.otlp_grpc_port),
    ):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind((settings.host, port))
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {settings.host}:{port} ({exc.strerror}): is Triage already running? "
                    f"Stop it, or choose another port with {flag}"
                ) from exc


async def _serve(settings: Settings, simulation: Simulation, summary: Summary, console: Console, workdir: Path) -> None:
    from app.server import serve
    from simulator import banner

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if simulation.stopping.is_set():
            stop.set()  # a second Ctrl-C: do not wait for the simulation to finish
        simulation.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await serve(
        settings,
        stop=stop,
        on_ready=lambda runtime: console.print(banner(settings, simulation, workdir), highlight=False),
        background=[
            lambda runtime, stop: simulation.run_beside(stop),
            lambda runtime, stop: summary.run(runtime.store, stop),
        ],
    )
