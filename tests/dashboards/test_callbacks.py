"""Dashboard callbacks posted by hand, as a hostile or broken client would: malformed requests get a 400
that says what is wrong, and a page state of the wrong shape renders the page's defaults, never a 500."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.dashboards.conftest import DashboardServer

DISPATCH = "/dashboards/_dash-update-component"


def _refresh(page: str, state: Any) -> dict[str, Any]:
    return {
        "output": f"{page}-content.children",
        "outputs": {"id": f"{page}-content", "property": "children"},
        "inputs": [{"id": f"{page}-refresh", "property": "n_intervals", "value": 1}],
        "state": [{"id": f"{page}-state", "property": "data", "value": state}],
        "changedPropIds": [f"{page}-refresh.n_intervals"],
    }


def test_malformed_callback_posts_are_400s(populated: tuple[LiveServer, DashboardServer]) -> None:
    _, dashboards = populated
    url = dashboards.url + DISPATCH
    for body, why in [
        ([1, 2, 3], "must be a JSON object"),
        ({"output": "nope.children", "inputs": []}, "no callback has the output 'nope.children'"),
        ({**_refresh("overview", {}), "inputs": "x"}, "must be lists"),
        ({**_refresh("overview", {}), "state": [7]}, "each input and state must be an object"),
    ]:
        response = httpx.post(url, json=body, timeout=30)
        assert response.status_code == 400 and why in response.json()["detail"], (body, response.text)


def test_a_page_state_of_the_wrong_shape_renders_the_defaults(populated: tuple[LiveServer, DashboardServer]) -> None:
    _, dashboards = populated
    url = dashboards.url + DISPATCH
    for page in ("overview", "workflow", "dependencies", "alerts", "transaction"):
        for state in ([1, 2], "range=99999d", None, {"range": "99999d", "workflow": ["x"] * 5}):
            response = httpx.post(url, json=_refresh(page, state), timeout=60)
            assert response.status_code == 200, (page, state, response.text[:300])
            assert response.json()["response"][f"{page}-content"]["children"], (page, state)
