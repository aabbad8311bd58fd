"""`triage report --period 7d --out report.{html,pdf}`: the executive workflow-stall report.

The embedded store allows one process, so when a Triage server answers at the configured host:port
(or --api URL), the report is fetched from it; otherwise the store is opened directly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from app import remote
from app.config import client_settings
from triage import logsetup
from triage.errors import ConfigError
from triage.settings import Settings

console = Console(stderr=True)


def register(
    subparsers: Any,
    common: Callable[[argparse.ArgumentParser], None],
    serving: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `triage report` to the command line."""
    report = subparsers.add_parser("report", help="render the executive workflow-stall report as HTML or PDF")
    common(report)
    report.add_argument("--period", default="7d", metavar="P", help="how far back: 24h, 7d (default), 14d, 30d")
    report.add_argument(
        "--out", required=True, metavar="FILE", help="report.html or report.pdf (format from the suffix)"
    )
    report.add_argument(
        "--api", metavar="URL", help="a running server to ask (default: the configured host:port when it answers)"
    )
    report.add_argument("--host", help=argparse.SUPPRESS)
    report.add_argument("--port", type=int, help=argparse.SUPPRESS)
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from dashboards.report import parse_period

    settings = client_settings(args)
    logsetup.configure(settings.log_level, settings.log_format)
    out = Path(args.out)
    kind = out.suffix.lower().lstrip(".")
    if kind not in ("html", "pdf"):
        raise ConfigError(f"--out {out} must end in .html or .pdf")
    try:
        period = parse_period(args.period)
    except ValueError as exc:
        raise ConfigError(f"--period: {exc}") from exc
    api = remote.api_url(settings, args.api)
    with console.status(f"rendering the {period} report"):
        if args.api or remote.answers(api):
            params = {"period": period, "format": kind}
            body = remote.ask(api, "GET", "/dashboards/report", settings, "report", 300, params=params).content
            source = f"server {api}"
        else:
            body, source = _render_locally(settings, period, kind), f"store {settings.store}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body)
    console.print(f"wrote {out} ({len(body):,} bytes, {period}, from the {source})")
    return 0


def _render_locally(settings: Settings, period: str, kind: str) -> bytes:
    from dashboards.report import build_report, render
    from triage.store import Store

    store = Store.from_settings(settings)
    store.migrate()
    try:
        return render(build_report(store, settings, period), kind)
    finally:
        store.close()
