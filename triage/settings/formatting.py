"""Validation errors as users read them: one line per problem, with the file and the field path."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from triage.settings.schema import FLOW_TAGS


def field_path(loc: tuple[Any, ...], data: Any) -> str:
    """workflows[0].steps[1].sla, with the workflow/step name where there is one."""
    parts: list[str] = []
    node: Any = data
    for i, item in enumerate(loc):
        if isinstance(item, int):
            name = ""
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                label = node[item].get("name") or node[item].get("id")
                name = f" ({label})" if label else ""
            parts[-1] = f"{parts[-1]}[{item}]{name}" if parts else f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        elif item in FLOW_TAGS and isinstance(node, dict) and (item not in node or loc[i + 1 : i + 2] == (item,)):
            continue  # the name pydantic gives a member of the steps' union, not a field the user wrote
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def format_validation_error(exc: ValidationError, source: str, data: Any, prefix: tuple[Any, ...] = ()) -> str:
    """One line per problem: where (source, field path), what, and the value given.

    `prefix` is where `data` sits in the whole configuration (e.g. ("alerts", "rules", 2)) when a
    part validates a piece of it on its own.
    """
    lines = [f"invalid configuration in {source}:"]
    root: Any = data
    for key in reversed(prefix):
        root = {key: root} if isinstance(key, str) else [None] * key + [root]
    for err in exc.errors():
        where = field_path((*prefix, *err["loc"]), root)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against docs/configuration.md"
        elif err["type"] == "missing":
            msg = "required field is missing"
        given = "" if err["type"] in ("missing",) else f" (given: {err.get('input')!r})"
        if err["type"] in ("extra_forbidden",) or isinstance(err.get("input"), dict | list):
            given = ""
        lines.append(f"  - {where}: {msg}{given}")
    return "\n".join(lines)
