"""The Dash app: one per process, its pages registered once, served under /dashboards/.

The app is shared by every mount in the process; each mount passes its context (store, settings) in
the WSGI environ (dashboards.context), so a callback reads the store of the server that received the request.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import dash
from dash import Dash, dcc, html

PREFIX = "/dashboards/"
DEBUG_ENV = "TRIAGE_DASHBOARDS_DEBUG"
NAVIGATION = (
    ("Overview", "/"),
    ("Workflows", "/workflow"),
    ("Dependencies", "/dependencies"),
    ("Alerts", "/alerts"),
    ("Report", "/executive"),
    ("Discover", "/discover"),
)
_app: Dash | None = None
_lock = threading.Lock()


def dash_app() -> Dash:
    """The process's Dash app, built on first use."""
    global _app
    with _lock:
        if _app is None:
            _app = _build()
        return _app


def _callback_context_in_this_thread() -> None:
    """Dash 4.4.1 reads its callback-context variable in register_page, but sets it only in the thread
    that imported dash: a server started from any other thread (tests, an embedding host) fails with
    LookupError. Give this thread the empty context that the import gives the first one."""
    from dash import _callback_context

    variable = getattr(_callback_context, "context_value", None)
    if variable is not None and variable.get(None) is None:
        variable.set({})


def _build() -> Dash:
    _callback_context_in_this_thread()
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(Path(__file__).parent / "assets"),
        requests_pathname_prefix=PREFIX,
        routes_pathname_prefix="/",
        serve_locally=True,
        suppress_callback_exceptions=True,  # pages' components exist only while their page is shown
        title="Triage",
        update_title="",
    )
    # Importing a page module registers it (dash.register_page) and its callbacks.
    from dashboards.pages import (  # noqa: F401
        alerts,
        dependencies,
        discover,
        executive,
        overview,
        transaction,
        workflow,
    )

    app.layout = _shell
    app.server.before_request(lambda: _refuse_malformed_callbacks(app))
    if os.environ.get(DEBUG_ENV):
        # Dev tools show callback errors in the page (tests look for the error overlay).
        app.enable_dev_tools(debug=True, dev_tools_hot_reload=False, dev_tools_serve_dev_bundles=False)
    return app


_DISPATCH = "/_dash-update-component"


def _refuse_malformed_callbacks(app: Dash) -> Any:
    """A callback post that is not the shape Dash's own client sends gets a 400 naming what is wrong,
    instead of failing inside the dispatcher (a 500)."""
    from flask import jsonify, request

    if request.method != "POST" or not request.path.endswith(_DISPATCH):
        return None
    body = request.get_json(silent=True)
    problem = ""
    if not isinstance(body, dict):
        problem = "the body must be a JSON object with output, outputs, inputs"
    elif not isinstance(body.get("output"), str) or body["output"] not in app.callback_map:
        problem = f"no callback has the output {str(body.get('output'))[:100]!r}"
    elif not all(isinstance(body.get(k, []), list) for k in ("inputs", "state", "changedPropIds")):
        problem = "inputs, state and changedPropIds must be lists"
    elif not all(isinstance(i, dict | list) for k in ("inputs", "state") for i in body.get(k, [])):
        problem = "each input and state must be an object with id, property and value"
    if problem:
        response = jsonify({"detail": f"malformed callback request: {problem}"})
        response.status_code = 400
        return response
    return None


def _shell() -> html.Div:
    links = [dcc.Link(name, href=dash.get_relative_path(path), className="nav-link") for name, path in NAVIGATION]
    return html.Div(
        [
            html.Header(
                [
                    dcc.Link("Triage", href=dash.get_relative_path("/"), className="brand"),
                    html.Nav(links, className="nav"),
                    html.Span(
                        "which business transactions are stuck, where, why, and what it costs", className="tagline"
                    ),
                ],
                className="topbar",
            ),
            html.Main(dash.page_container, className="page"),
        ]
    )
