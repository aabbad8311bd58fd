"""Which log source a name means: a configured `log_sources` entry, else the built-in profile of that name.

A built-in source needs no configuration: `POST /api/v1/logs/raw?source=mirth` parses with the `mirth`
profile and stores records under `service.name` = `log.source` = `mirth`, timestamps without an offset
read as UTC. A configured entry of the same name wins (its service, timezone, pattern, renames).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import get_args

from collector.logs.profile import standalone_profiles
from triage.settings import LogSource

# The formats a LogSource may name; a profile the settings do not know cannot back a built-in source.
_FORMATS = frozenset(get_args(LogSource.model_fields["format"].annotation))


@cache
def builtin_source_names() -> tuple[str, ...]:
    """Names usable as a source with no `log_sources:` entry, in name order."""
    return tuple(name for name in standalone_profiles() if name in _FORMATS)


@cache
def _builtin(name: str) -> LogSource:
    return LogSource.model_validate({"name": name, "format": name})


def find_source(configured: Sequence[LogSource], name: str) -> LogSource | None:
    """The configured source of that name, else the built-in one, else None."""
    for source in configured:
        if source.name == name:
            return source
    return _builtin(name) if name in builtin_source_names() else None
