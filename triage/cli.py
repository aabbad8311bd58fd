"""The `triage` command line. Every flag is also a TRIAGE_<NAME> variable and a YAML field."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from triage import logsetup
from triage.errors import ConfigError, TriageError
from triage.settings import Settings, load_settings

console = Console(stderr=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file (env TRIAGE_CONFIG)")
    parser.add_argument(
        "--store",
        metavar="DSN",
        help="chdb:///data/dir (embedded, default ./data) or http://user:pass@host:8123/db (env TRIAGE_STORE)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None)


def _serving(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; env TRIAGE_HOST)")
    parser.add_argument("--port", type=int, help="API and dashboards port (default 8080; env TRIAGE_PORT)")
    parser.add_argument("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318)")
    parser.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triage",
        description="Triage: which business transactions are stuck, where, why, and how much it matters.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run collector, API and dashboards in one process")
    _common(serve)
    _serving(serve)

    migrate = sub.add_parser("migrate", help="apply pending schema migrations to the store")
    _common(migrate)

    check = sub.add_parser("check-config", help="validate a configuration file and print a summary")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--store", metavar="DSN", help=argparse.SUPPRESS)
    check.add_argument("--log-level", default=None, help=argparse.SUPPRESS)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("store", "host", "port", "otlp_http_port", "otlp_grpc_port", "log_level")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None), _overrides(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from triage.server import serve

    settings = _settings(args)
    logsetup.configure(settings.log_level, settings.log_format)
    console.print(
        f"[bold]Triage[/] serving API on http://{settings.host}:{settings.port}  "
        f"OTLP/HTTP :{settings.otlp_http_port}  OTLP/gRPC :{settings.otlp_grpc_port}  "
        f"store {settings.store}"
    )
    asyncio.run(serve(settings))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from triage.store import Store

    settings = _settings(args)
    logsetup.configure(settings.log_level, settings.log_format)
    store = Store(
        settings.store,
        cluster=settings.cluster,
        raw_ttl_days=settings.retention.raw_days,
        business_ttl_days=settings.retention.business_days,
    )
    applied = store.migrate()
    if applied:
        for name in applied:
            console.print(f"applied {name}")
    else:
        console.print(f"store {store.target.describe()} is up to date")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.file, environ={})
    table = Table(title=f"{args.file} is valid")
    table.add_column("section")
    table.add_column("entries", justify="right")
    table.add_column("names")
    for section, names in (
        ("facilities", [f.id for f in settings.facilities]),
        ("workflows", [w.name for w in settings.workflows]),
        ("queues", [q.name for q in settings.queues]),
        ("log_sources", [s.name for s in settings.log_sources]),
        ("alert rules", [r.name for r in settings.alerts.rules]),
    ):
        table.add_row(section, str(len(names)), ", ".join(names))
    Console().print(table)
    return 0


COMMANDS = {"serve": cmd_serve, "migrate": cmd_migrate, "check-config": cmd_check_config}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/] {exc}", highlight=False)
        return 2
    except TriageError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
