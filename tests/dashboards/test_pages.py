"""The dashboards in a real headless Chromium: every page loads without errors, filters live in the URL,
the drill-down opens the transaction the overview links to, and empty or huge stores render sensibly."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from bench.dashboards import bench_config, generate
from tests.conftest import LiveServer, server_settings
from tests.dashboards.conftest import (
    DashboardServer,
    assert_healthy,
    open_page,
    screenshot,
    serve_dashboards,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.browser


def stuck_keys(driver: Any) -> list[str]:
    try:
        return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#stuck-transactions .tx-link")]
    except StaleElementReferenceException:
        return []


def text_of(driver: Any, css: str) -> str:
    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except (StaleElementReferenceException, Exception):
        return ""


def choose(driver: Any, name: str, option: str) -> None:
    """Pick an option of a filter dropdown as a person would: open it, click the option."""
    driver.find_element(By.CSS_SELECTOR, f"button[id*='\"{name}\"']").click()
    for element in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
        if element.text == option:
            element.click()
            return
    raise AssertionError(f"no option {option!r} in the {name} dropdown")


def test_overview_shows_stuck_work_and_keeps_filters_in_the_url(
    populated: tuple[LiveServer, DashboardServer], browser: Any, artifacts: Path
) -> None:
    _, dashboards = populated
    headline = open_page(browser, f"{dashboards.url}/dashboards/", "#overview-headline")
    assert (
        "3 transactions are stuck now (2 at critical facilities), holding $248k; 2 more started in the last 24h"
        in headline.text
    )
    wait_until(lambda: len(stuck_keys(browser)) == 3)
    keys = stuck_keys(browser)
    assert keys[0] == "4500000002", "critical, $182k, blocked: the most urgent first"
    assert set(keys) == {"4500000002", "4500000004", "4500000005"}
    causes = text_of(browser, "#top-causes")
    assert "dependency error on approval-saas" in causes and "awaiting approval" in causes
    assert "wf.approvals" in text_of(browser, "#queue-table")
    assert "approval-saas" in text_of(browser, "#service-table")
    assert "St. Mary's ICU" in text_of(browser, "#stuck-transactions")
    assert_healthy(browser)
    screenshot(browser, artifacts, "overview")

    choose(browser, "criticality", "normal")
    wait_until(lambda: "criticality=normal" in browser.current_url, message="the filter is written to the URL")
    wait_until(lambda: stuck_keys(browser) == ["4500000005"], message="the table shows normal-tier work only")
    wait_until(
        lambda: "1 transaction is stuck now (0 at critical facilities)" in text_of(browser, "#overview-headline")
    )
    assert_healthy(browser)
    screenshot(browser, artifacts, "overview-filtered")

    # The link reproduces the view: a fresh load of the URL shows the same filtered content.
    filtered = browser.current_url
    open_page(browser, f"{dashboards.url}/dashboards/", "#overview-headline")
    open_page(browser, filtered, "#stuck-transactions")
    wait_until(lambda: stuck_keys(browser) == ["4500000005"])
    assert "normal" in text_of(browser, "button[id*='\"criticality\"']")
    choose(browser, "range", "last 1h")
    wait_until(lambda: "range=1h" in browser.current_url and "criticality=normal" in browser.current_url)
    assert_healthy(browser)


def test_drill_down_link_opens_the_transaction(
    populated: tuple[LiveServer, DashboardServer], browser: Any, artifacts: Path
) -> None:
    _, dashboards = populated
    open_page(browser, f"{dashboards.url}/dashboards/", "#stuck-transactions")
    link = next(
        a for a in browser.find_elements(By.CSS_SELECTOR, "#stuck-transactions .tx-link") if a.text == "4500000002"
    )
    link.click()
    title = wait_for(browser, "#transaction-title")
    assert browser.current_url.endswith("/dashboards/transaction/procure_to_pay/4500000002")
    assert "4500000002" in title.text and "blocked" in title.text
    assert "dependency error on approval-saas" in text_of(browser, "#transaction-cause")
    wait_for(browser, "#timeline .js-plotly-plot")
    assert "approval-saas returned 503" in text_of(browser, "#causes")
    hops = text_of(browser, "#hops-table")
    assert "requisition" in hops and "erp-procurement" in hops
    traces = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#hops-table a")]
    assert traces and all(re.search(r"/api/v1/traces/[0-9a-f]{32}$", t) for t in traces)
    spans = httpx.get(traces[0]).json()["spans"]
    assert any(s["attributes"].get("erp.po_number") == "4500000002" for s in spans), "the trace link opens its spans"
    assert_healthy(browser)
    screenshot(browser, artifacts, "transaction")

    open_page(browser, f"{dashboards.url}/dashboards/transaction/procure_to_pay/9999999999", "#transaction-missing")
    assert "No procure_to_pay transaction with key '9999999999'" in text_of(browser, "#transaction-missing")
    assert_healthy(browser)


def test_workflow_dependencies_alerts_and_report_pages(
    populated: tuple[LiveServer, DashboardServer], browser: Any, artifacts: Path
) -> None:
    server, dashboards = populated
    headline = open_page(browser, f"{dashboards.url}/dashboards/workflow", "#workflow-headline")
    assert "Procure to pay: 5 started and 1 completed" in headline.text
    wait_for(browser, "#flow .js-plotly-plot")
    assert "requisition" in text_of(browser, "#stuck-by-step")
    assert_healthy(browser)
    screenshot(browser, artifacts, "workflow")

    open_page(browser, f"{dashboards.url}/dashboards/dependencies", "#services-table")
    services = text_of(browser, "#services-table")
    assert "approval-saas" in services and "procure_to_pay: 3" in services, "approval-saas holds up three POs now"
    assert "wf.approvals" in text_of(browser, "#queues-table")
    assert_healthy(browser)
    screenshot(browser, artifacts, "dependencies")

    none = open_page(browser, f"{dashboards.url}/dashboards/alerts", "#alerts-none")
    assert "No alert rules are configured" in none.text
    assert_healthy(browser)
    link = f"http://127.0.0.1:{dashboards.port}/dashboards/?cause=dependency_error&component=approval-saas&workflow=procure_to_pay"
    server.store.command(
        "INSERT INTO alert_state (Fingerprint, Rule, Status, Severity, Labels, Annotations, ActiveSince, FiredAt, "
        "UpdatedAt, Count, Value, Keys, Version) SELECT 'fp1', 'critical_work_blocked', 'firing', 'page', "
        "map('workflow', 'procure_to_pay', 'facility', 'STM-ICU', 'cause_kind', 'dependency_error'), "
        "map('summary', '2 procure_to_pay blocked: dependency_error on approval-saas', 'dashboard_url', {link:String}), "
        "now64(3) - 600, now64(3) - 300, now64(3), 2, 184300, ['4500000002', '4500000005'], 1",
        {"link": link},
    )
    try:
        table = open_page(browser, f"{dashboards.url}/dashboards/alerts", "#alerts-table")
        assert "2 procure_to_pay blocked: dependency_error on approval-saas" in table.text and "firing" in table.text
        assert "$184k" in table.text
        assert_healthy(browser)
        screenshot(browser, artifacts, "alerts")
        # The on-call engineer follows the alert to the overview, filtered like the alert.
        browser.find_element(By.CSS_SELECTOR, "#alerts-table .tx-link").click()
        narrowing = wait_for(browser, "#overview-narrowing")
        assert "cause = dependency_error, component = approval-saas" in narrowing.text
        wait_until(lambda: sorted(stuck_keys(browser)) == ["4500000002", "4500000005"])
        assert_healthy(browser)
        screenshot(browser, artifacts, "overview-from-alert")
    finally:
        server.store.command("TRUNCATE TABLE alert_state")

    summary = open_page(browser, f"{dashboards.url}/dashboards/executive", "#report-summary")
    assert "5 business transactions started" in summary.text and "stalled at least once" in summary.text
    assert "format=pdf" in (browser.find_element(By.ID, "report-pdf").get_attribute("href") or "")
    wait_for(browser, "#report-content .js-plotly-plot")
    assert_healthy(browser)
    screenshot(browser, artifacts, "report-page")


def test_empty_store_explains_what_to_do(chdb_path: Path, browser: Any, artifacts: Path) -> None:
    server = LiveServer(server_settings(chdb_path, redaction={"enabled": False})).start()
    dashboards = serve_dashboards(server)
    try:
        empty = open_page(browser, f"{dashboards.url}/dashboards/", "#overview-empty")
        assert "No business transactions yet" in empty.text and "No workflows are configured" in empty.text
        assert_healthy(browser)
        screenshot(browser, artifacts, "empty-overview")
        assert "No workflows yet" in open_page(browser, f"{dashboards.url}/dashboards/workflow", "#workflow-empty").text
        assert "No spans" in open_page(browser, f"{dashboards.url}/dashboards/dependencies", "#services-empty").text
        assert "No queues reported" in text_of(browser, "#queues-empty")
        assert_healthy(browser)
        open_page(browser, f"{dashboards.url}/dashboards/alerts", "#alerts-none")
        summary = open_page(browser, f"{dashboards.url}/dashboards/executive", "#report-summary")
        assert "No business transactions started" in summary.text
        assert_healthy(browser)
        screenshot(browser, artifacts, "empty-report-page")
    finally:
        dashboards.stop()
        server.stop()


def test_large_store_renders_within_seconds(chdb_path: Path, browser: Any, artifacts: Path) -> None:
    # The generated store is the truth here: no correlator may re-judge its transactions meanwhile.
    config = {**bench_config(), "correlation": {"enabled": False}}
    server = LiveServer(server_settings(chdb_path, redaction={"enabled": False}, **config)).start()
    dashboards = serve_dashboards(server)
    try:
        generate(server.store, transactions=60_000, spans=400_000, say=lambda _: None)
        for path, ready in (
            ("/dashboards/?range=30d", "#stuck-transactions"),
            ("/dashboards/workflow?range=30d&workflow=invoice_matching", "#flow .js-plotly-plot"),
            ("/dashboards/dependencies", "#queues-table"),
        ):
            started = time.perf_counter()
            open_page(browser, dashboards.url + path, ready, timeout=30)
            assert time.perf_counter() - started < 15
            assert_healthy(browser)
        open_page(browser, dashboards.url + "/dashboards/?range=30d", "#stuck-transactions")
        wait_until(lambda: len(stuck_keys(browser)) == 25, message="the live table shows the top 25")
        # The headline speaks the store's numbers (how many started "in the last 30d" moves with the clock).
        stuck, critical = server.store.query(
            "SELECT count(), countIf(Criticality = 'critical') FROM business_transactions FINAL "
            "WHERE State IN ('stalled', 'blocked', 'failed')"
        ).first_row
        headline = text_of(browser, "#overview-headline")
        assert headline.startswith(f"{stuck:,} transactions are stuck now ({critical:,} at critical facilities)")
        assert re.search(r"; [\d,]+ more started in the last 30d are moving or done\.$", headline), headline
        screenshot(browser, artifacts, "large-overview")
    finally:
        dashboards.stop()
        server.stop()
