"""`triage rules export --format prometheus` and `triage rules check`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app.config import load_config
from triage.settings import Settings

console = Console(stderr=True)


def register(subparsers: Any, common: Callable[[argparse.ArgumentParser], None], serving: Any) -> None:
    """Add `triage rules ...` to the command line."""
    rules = subparsers.add_parser("rules", help="alert rules: check them, export them as Prometheus rules")
    sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="write equivalent Prometheus alerting rules (over the /metrics gauges)")
    common(export)
    export.add_argument("--format", choices=["prometheus"], default="prometheus", help="output format")
    export.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    export.add_argument("--group", default="triage", help="rule group name (default triage)")
    export.set_defaults(func=cmd_export)
    check = sub.add_parser("check", help="validate the alert rules (config, rules_file, packs) and list them")
    common(check)
    check.add_argument("files", nargs="*", metavar="RULES.yaml", help="also validate these rule files")
    check.set_defaults(func=cmd_check)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"store": args.store, "log_level": args.log_level}
    return load_config(args.config, {k: v for k, v in overrides.items() if v is not None})


def cmd_export(args: argparse.Namespace) -> int:
    from alerts import configured_rules, export_prometheus

    settings = _settings(args)
    rules = [r.rule for r in configured_rules(settings)]
    text, skipped = export_prometheus(rules, settings, group=args.group)
    if args.out:
        Path(args.out).write_text(text, "utf-8")
        console.print(f"wrote {len(rules) - len(skipped)} rules to {args.out}")
    else:
        sys.stdout.write(text)
    for reason in skipped:
        console.print(f"[yellow]not exported:[/] {reason}", highlight=False)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from alerts import LoadedRule, configured_rules, load_rules_file
    from triage.durations import format_duration

    settings = _settings(args)
    rules = configured_rules(settings)
    for file in args.files:
        rules += [LoadedRule(r, f"file:{file}") for r in load_rules_file(file)]
    table = Table(title=f"{len(rules)} alert rules are valid")
    for column in ("rule", "source", "watches", "for", "severity", "group_by"):
        table.add_column(column)
    for item in rules:
        r = item.rule
        grouping = ", ".join(r.grouping) or "(one alert)"
        table.add_row(r.name, item.source, r.kind, format_duration(r.for_), r.severity, grouping)
    Console().print(table)
    return 0
