"""What a dashboard callback reads from: the store and settings of the server that received the request.

One Dash app serves every mount in the process; each mount passes its context in the WSGI environ,
so pages import this module, never the app that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triage.settings import Settings
from triage.store import Store

ENVIRON_KEY = "triage.dashboards"


@dataclass(frozen=True)
class DashboardContext:
    store: Store
    settings: Settings


def current_context() -> DashboardContext:
    """The context of the server handling this request (set by mount_dashboards)."""
    from flask import request

    context: Any = request.environ.get(ENVIRON_KEY)
    if context is None:
        raise RuntimeError("the dashboards were served without a context: mount them with mount_dashboards()")
    return context  # type: ignore[no-any-return]
