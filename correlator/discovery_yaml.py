"""A proposed workflow as YAML a person reads and `triage check-config` accepts unchanged: one
`workflows:` entry, each step on a line of its own under a comment with its evidence."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from triage.durations import format_duration

if TYPE_CHECKING:
    from correlator.proposal import DiscoveredStep, DiscoveryEvidence


def render(workflow: dict[str, Any], evidence: DiscoveryEvidence) -> str:
    """`workflows: [workflow]` with the evidence as comments."""
    since, until = evidence.since, evidence.until
    lines = [
        f"# Proposed by Triage discovery from {evidence.transactions:,} transactions carrying "
        f"{', '.join(evidence.keys)}, {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC.",
        f"# SLAs: the 95th percentile of the wait before each step × {evidence.margin:g}, rounded up, per facility",
        "# criticality where facilities are configured and enough waits were seen. Review before use.",
    ]
    lines += [f"# Note: {_comment(note)}" for note in evidence.notes]
    lines += ["workflows:", f"  - name: {_scalar(workflow['name'])}", f"    keys: {_flow(workflow['keys'])}"]
    for field in ("facility", "value"):
        if field in workflow:
            lines.append(f"    {field}: {_scalar(workflow[field])}")
    lines.append("    steps:")
    by_name = {s.name: s for s in evidence.steps}
    for item in workflow["steps"]:
        if "one_of" not in item:
            lines += _step_lines(item, by_name, "      ")
            continue
        lines += ["      # alternative paths: each transaction takes one", "      - one_of:"]
        for branch in item["one_of"]:
            if isinstance(branch, dict):
                lines += _step_lines(branch, by_name, "          ")
                continue
            for i, step in enumerate(branch):
                lines += _step_lines(step, by_name, "          " if i == 0 else "            ", nested=i == 0)
    lines.append(f"    terminal: {_flow(workflow['terminal'])}")
    return "\n".join(lines) + "\n"


def _step_lines(
    step: dict[str, Any], by_name: dict[str, DiscoveredStep], indent: str, nested: bool = False
) -> list[str]:
    """A step's comment and its line; `nested` starts a branch that is a list of steps (`- - {...}`)."""
    ev = by_name.get(step["name"])
    dash = "- - " if nested else "- "
    comment = [f"{indent}# {_comment(_summary(ev))}"] if ev else []
    return [*comment, f"{indent}{dash}{_flow(step)}"]


def _summary(ev: DiscoveredStep) -> str:
    wait = ""
    if ev.median_seconds is not None and ev.p95_seconds is not None:
        wait = f" · wait p50 {format_duration(ev.median_seconds)}, p95 {format_duration(ev.p95_seconds)}"
    loop = f" · reached again by {ev.repeated:,}" if ev.repeated else ""
    return f"{ev.transactions:,} transactions ({ev.share:.0%} of those that got this far){wait}{loop} · {ev.reason}"


def _comment(text: str) -> str:
    return re.sub(r"[\r\n\t\x00-\x1f\x7f]+", " ", text)


def _flow(value: Any) -> str:
    """One YAML value on one line (flow style), quoted where YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=True)
    return str(text).strip()


def _scalar(value: Any) -> str:
    return _flow([value])[1:-1]
