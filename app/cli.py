"""The `triage` command line. Every flag is also a TRIAGE_<NAME> variable and a YAML field."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from app import remote
from app.config import load_config
from triage import logsetup
from triage.durations import parse_duration
from triage.errors import ConfigError, TriageError
from triage.settings import Settings
from triage.vocabulary import ROLES

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

    serve = sub.add_parser(
        "serve", help="run the service: every part in one process, or the parts --roles names (scaling out)"
    )
    _common(serve)
    _serving(serve)
    serve.add_argument(
        "--roles",
        metavar="R[,R]",
        help=f"parts this process runs, of {', '.join(ROLES)} (default all; env TRIAGE_ROLES)",
    )
    serve.add_argument(
        "--shard",
        metavar="I/N",
        help="correlator shard this process owns, e.g. 2/4 (default 1/1; env TRIAGE_SHARD); "
        "a shard whose worker stops renewing its lease is taken over by another",
    )

    migrate = sub.add_parser("migrate", help="apply pending schema migrations to the store, or print their DDL")
    _common(migrate)
    migrate.add_argument(
        "--print",
        dest="print_ddl",
        action="store_true",
        help="print every statement migrate runs on an empty store, as SQL for clickhouse-client --multiquery; "
        "connects to nothing",
    )
    migrate.add_argument(
        "--cluster", metavar="NAME", help="ClickHouse cluster whose DDL to run or print (default: the configured one)"
    )

    check = sub.add_parser("check-config", help="validate a configuration file and print a summary")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--store", metavar="DSN", help=argparse.SUPPRESS)
    check.add_argument("--log-level", default=None, help=argparse.SUPPRESS)

    replay = sub.add_parser("replay", help="rebuild business transactions from the raw data of a time range")
    _common(replay)
    replay.add_argument(
        "--from",
        dest="start",
        required=True,
        type=_timestamp,
        metavar="T",
        help="start, ISO 8601 (2026-11-24T09:00:00Z) or relative (-6h, -2d)",
    )
    replay.add_argument(
        "--to", dest="end", type=_timestamp, metavar="T", default=None, help="end, same forms (default now)"
    )
    replay.add_argument(
        "--api", metavar="URL", help="a running server to ask (default: the configured host:port when it answers)"
    )
    for register in _part_commands():
        register(sub, _common, _serving)
    return parser


def _part_commands() -> list[Any]:
    """The commands of their own modules: demo (the simulator), report (dashboards), rules (alerts),
    discover (workflow discovery)."""
    from app import demo, discover, report, rules

    return [demo.register, report.register, rules.register, discover.register]


def _timestamp(text: str) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise) or a relative one: -90m, -6h, -2d."""
    text = text.strip()
    if text.startswith("-") and text[1:]:
        try:
            return datetime.now(UTC) - timedelta(seconds=parse_duration(text[1:]))
        except ValueError:
            pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: write 2026-11-24T09:00:00Z or a relative -6h / -2d"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("store", "host", "port", "otlp_http_port", "otlp_grpc_port", "log_level", "roles", "shard")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _settings(args: argparse.Namespace) -> Settings:
    return load_config(getattr(args, "config", None), _overrides(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from app.server import serve

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
    if args.cluster:
        settings = settings.model_copy(update={"cluster": args.cluster})
    logsetup.configure(settings.log_level, settings.log_format)
    store = Store.from_settings(settings)
    if args.print_ddl:
        from triage.store import migrations

        sys.stdout.write(migrations.script(store))
        return 0
    applied = store.migrate()
    if applied:
        for name in applied:
            console.print(f"applied {name}")
    else:
        console.print(f"store {store.target.describe()} is up to date")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from alerts import inline_rules

    settings = load_config(args.file, environ={})
    table = Table(title=f"{args.file} is valid")
    table.add_column("section")
    table.add_column("entries", justify="right")
    table.add_column("names")
    for section, names in (
        ("facilities", [f.id for f in settings.facilities]),
        ("workflows", [w.name for w in settings.workflows]),
        ("queues", [q.name for q in settings.queues]),
        ("log_sources", [s.name for s in settings.log_sources]),
        ("alert rules", [r.name for r in inline_rules(settings)]),
    ):
        table.add_row(section, str(len(names)), ", ".join(names))
    Console().print(table)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logsetup.configure(settings.log_level, settings.log_format)
    end = args.end or datetime.now(UTC)
    if end <= args.start:
        raise ConfigError("--to must be after --from")
    api = remote.api_url(settings, args.api)
    with console.status(f"replaying {args.start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"):
        if args.api or remote.answers(api):
            params = {"from": args.start.isoformat(), "to": end.isoformat()}
            result = remote.ask(api, "POST", "/api/v1/replay", settings, "replay", 3600, params=params).json()
        else:
            from correlator import Correlator
            from triage.store import Store

            store = Store.from_settings(settings)
            store.migrate()
            result = Correlator(store, settings).replay(args.start, end).__dict__
    console.print(
        f"replayed: {result['touched_traces']} traces, {result['events']} events, "
        f"{result['evaluated']} transactions re-evaluated in {result['seconds']:.1f}s"
    )
    return 0


COMMANDS = {"serve": cmd_serve, "migrate": cmd_migrate, "check-config": cmd_check_config, "replay": cmd_replay}


def _join_relative_times(argv: Sequence[str]) -> list[str]:
    """`--from -6h` would read as an option to argparse: pass it on as `--from=-6h`."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--from", "--to", "--since") and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_join_relative_times(sys.argv[1:] if argv is None else argv))
    try:
        handler = getattr(args, "func", None) or COMMANDS[args.command]
        return int(handler(args))
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
