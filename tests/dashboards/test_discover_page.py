"""The discovery page in a real headless Chromium: a key typed in, the flow drawn as a Sankey, the YAML
shown to copy (the configuration loader accepts it), and an unknown key explained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.conftest import LiveServer
from tests.correlator.test_discover import KEYS, Request, estate  # noqa: F401 (the estate fixture)
from tests.dashboards.conftest import (
    DashboardServer,
    assert_healthy,
    open_page,
    screenshot,
    serve_dashboards,
    wait_for,
    wait_until,
)
from triage.settings import load_settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def dashboards(estate: tuple[LiveServer, list[Request]]) -> Iterator[DashboardServer]:  # noqa: F811
    served = serve_dashboards(estate[0])
    yield served
    served.stop()


def test_discovery_page_draws_the_flow_and_offers_the_yaml(
    dashboards: DashboardServer, browser: Any, artifacts: Path
) -> None:
    hint = open_page(browser, f"{dashboards.url}/dashboards/discover", "#discover-empty")
    assert "Name a key attribute" in hint.text
    field = browser.find_element(By.ID, "discover-key")
    field.clear()
    field.send_keys(KEYS, Keys.ENTER)
    browser.find_element(By.ID, "discover-run").click()
    headline = wait_for(browser, "#discover-headline", timeout=60)
    assert "60 transactions carry req.id, approval.ref, receiving.req_ids" in headline.text
    assert "1 optional, 2 conditional, 3 on alternative paths, 2 waiting on a person" in headline.text
    wait_for(browser, "#discover-flow .js-plotly-plot")
    nodes = browser.find_elements(By.CSS_SELECTOR, "#discover-flow .sankey .node-label")
    assert any("review_request" in n.text and "60 · wait 3h" in n.text for n in nodes), [n.text for n in nodes]
    shown = browser.find_element(By.ID, "discover-yaml").text
    workflow = load_settings(None, yaml.safe_load(shown), environ={}).workflows[0]
    assert workflow.steps[0].match.span_name == "POST /requests"
    copy = browser.find_element(By.ID, "discover-copy")
    copy.click()
    wait_until(lambda: copy.text == "Copied", message="the copy button copies the YAML")
    assert "review_request" in browser.find_element(By.ID, "discover-steps").text
    assert_healthy(browser)
    screenshot(browser, artifacts, "discover")

    # A link that names the key runs at once; an unknown key says what was found instead.
    empty = open_page(browser, f"{dashboards.url}/dashboards/discover?key=req.idd&range=7d", "#discover-empty")
    wait_until(lambda: "look close: req.id" in browser.find_element(By.ID, "discover-empty").text)
    assert (
        "Nothing to propose" in empty.text or "Nothing to propose" in browser.find_element(By.ID, "discover-empty").text
    )
    assert_healthy(browser)


def test_discovery_callback_takes_hostile_input(dashboards: DashboardServer) -> None:
    url = f"{dashboards.url}/dashboards/_dash-update-component"
    for clicks, key, window in (
        (1, ["x"], "7d"),
        ("1", "' OR 1=1 --", "99999d"),
        (None, None, None),
        (1, "a" * 3000, []),
    ):
        body = {
            "output": "discover-content.children",
            "outputs": {"id": "discover-content", "property": "children"},
            "inputs": [{"id": "discover-run", "property": "n_clicks", "value": clicks}],
            "state": [
                {"id": "discover-key", "property": "value", "value": key},
                {"id": "discover-range", "property": "value", "value": window},
            ],
            "changedPropIds": ["discover-run.n_clicks"],
        }
        response = httpx.post(url, json=body, timeout=60)
        assert response.status_code == 200, (key, response.text[:300])
