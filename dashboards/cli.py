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

from triage import logsetup
from triage.errors import ConfigError, TriageError
from triage.settings import Settings, load_settings

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


def _settings(args: argparse.Namespace) -> Settings:
    names = ("store", "log_level", "host", "port")
    overrides = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return load_settings(getattr(args, "config", None), overrides)


def cmd_report(args: argparse.Namespace) -> int:
    from dashboards.report import parse_period

    settings = _settings(args)
    logsetup.configure(settings.log_level, settings.log_format)
    out = Path(args.out)
    kind = out.suffix.lower().lstrip(".")
    if kind not in ("html", "pdf"):
        raise ConfigError(f"--out {out} must end in .html or .pdf")
    try:
        period = parse_period(args.period)
    except ValueError as exc:
        raise ConfigError(f"--period: {exc}") from exc
    api = args.api or f"http://{settings.host}:{settings.port}"
    with console.status(f"rendering the {period} report"):
        if args.api or _answers(api):
            body, source = _fetch(api, period, kind, settings), f"server {api}"
        else:
            body, source = _render_locally(settings, period, kind), f"store {settings.store}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body)
    console.print(f"wrote {out} ({len(body):,} bytes, {period}, from the {source})")
    return 0


def _answers(api: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _fetch(api: str, period: str, kind: str, settings: Settings) -> bytes:
    """Ask the server that holds the store for the rendered report."""
    import httpx

    headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
    try:
        response = httpx.get(
            f"{api}/dashboards/report", params={"period": period, "format": kind}, headers=headers, timeout=300
        )
    except httpx.HTTPError as exc:
        raise TriageError(f"cannot reach the Triage server at {api}: {exc}. Start it, or pass --api URL") from exc
    if response.status_code == 404:
        raise TriageError(
            f"the server at {api} does not serve /dashboards/report; is it a Triage server with dashboards?"
        )
    if response.status_code != 200:
        raise TriageError(f"the server at {api} refused the report ({response.status_code}): {response.text[:300]}")
    return response.content


def _render_locally(settings: Settings, period: str, kind: str) -> bytes:
    from dashboards.report import build_report, render
    from triage.store import Store

    store = Store(
        settings.store,
        cluster=settings.cluster,
        raw_ttl_days=settings.retention.raw_days,
        business_ttl_days=settings.retention.business_days,
    )
    store.migrate()
    try:
        return render(build_report(store, settings, period), kind)
    finally:
        store.close()
