"""`triage discover --key ATTR [--since -7d] [--value ATTR] [--out FILE]`: a workflow proposed from the
telemetry that carries a business key, printed as YAML (or written to --out) with a table of its evidence.

The embedded store allows one process, so when a Triage server answers at the configured host:port
(or --api URL), the server is asked (GET /api/v1/discover); otherwise the store is opened directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app import remote
from app.api.discover import parse_time
from app.config import client_settings
from triage import logsetup
from triage.durations import format_duration
from triage.errors import ConfigError
from triage.settings import Settings

console = Console(stderr=True)


def register(
    subparsers: Any,
    common: Callable[[argparse.ArgumentParser], None],
    serving: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `triage discover` to the command line."""
    cmd = subparsers.add_parser("discover", help="propose a workflow from the telemetry that carries a business key")
    common(cmd)
    cmd.add_argument(
        "--key",
        required=True,
        metavar="ATTR",
        help="attribute carrying the key; several comma-separated, e.g. erp.po_number,po.number",
    )
    cmd.add_argument("--since", default="-7d", metavar="T", help="from: -7d (default), -6h or ISO 8601")
    cmd.add_argument("--value", metavar="ATTR", help="the attribute with the money at stake (found if not given)")
    cmd.add_argument("--name", metavar="NAME", help="the proposed workflow's name")
    cmd.add_argument("--out", metavar="FILE", help="write the YAML here instead of printing it")
    cmd.add_argument(
        "--api", metavar="URL", help="a running server to ask (default: the configured host:port when it answers)"
    )
    cmd.add_argument("--host", help=argparse.SUPPRESS)
    cmd.add_argument("--port", type=int, help=argparse.SUPPRESS)
    cmd.set_defaults(func=cmd_discover)


def cmd_discover(args: argparse.Namespace) -> int:
    settings = client_settings(args)
    logsetup.configure(settings.log_level, settings.log_format)
    try:
        since = parse_time(args.since)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from exc
    api = remote.api_url(settings, args.api)
    with console.status(f"discovering the workflow of {args.key} since {since:%Y-%m-%d %H:%M} UTC"):
        if args.api or remote.answers(api):
            params = {"key": args.key, "since": since.isoformat()}
            params |= {k: getattr(args, k) for k in ("value", "name") if getattr(args, k)}
            found = remote.ask(api, "GET", "/api/v1/discover", settings, "discovery", 600, params=params).json()
        else:
            found = _discover_locally(settings, args, since)
    text = str(found["yaml"])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    console.print(evidence_table(found["evidence"]))
    for note in found["evidence"].get("notes", []):
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    return 0


def _discover_locally(settings: Settings, args: argparse.Namespace, since: datetime) -> dict[str, Any]:
    from correlator import discover
    from triage.store import Store

    store = Store.from_settings(settings)
    store.migrate()
    try:
        found = discover(
            store,
            args.key,
            since,
            datetime.now(UTC),
            value=args.value,
            facilities=settings.facilities,
            name=args.name,
            hops=settings.correlation.hop_rounds,
        )
    finally:
        store.close()
    # The same shape as the API's answer.
    return json.loads(json.dumps(dataclasses.asdict(found), default=str))  # type: ignore[no-any-return]


def evidence_table(evidence: dict[str, Any]) -> Table:
    """The proposal's steps: what each matches, how many reached it, the wait before it, its mark."""
    table = Table(
        title=f"{evidence['transactions']:,} transactions carrying {', '.join(evidence['keys'])}",
        title_justify="left",
    )
    for column, justify in (
        ("step", "left"),
        ("service · span", "left"),
        ("reached", "right"),
        ("share", "right"),
        ("wait p50", "right"),
        ("wait p95", "right"),
        ("mark", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for s in evidence["steps"]:
        mark = s["mark"] + (", human" if s["human"] else "") + (f", again ×{s['repeated']}" if s["repeated"] else "")
        table.add_row(
            s["name"],
            f"{s['service']} · {s['span_name']}",
            f"{s['transactions']:,}",
            f"{s['share']:.0%}",
            _duration(s["median_seconds"]),
            _duration(s["p95_seconds"]),
            mark,
        )
    return table


def _duration(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else "—"
