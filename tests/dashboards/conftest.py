"""Fixtures for the dashboards: a server that serves them around a live server's runtime, real
transactions produced through the OpenTelemetry SDK and the correlator, and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

# Before the Dash app is built: dev tools on, so that a callback error shows in the page and fails a test.
os.environ.setdefault("TRIAGE_DASHBOARDS_DEBUG", "1")

from app.api import create_api_app  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from dashboards import mount_dashboards  # noqa: E402
from tests.conftest import LiveServer, free_port, server_settings  # noqa: E402
from tests.workflows import FACILITIES, PO_KEY_PATTERNS, PO_KEYS, budget_approval, po_sent, procure_to_pay  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboards"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1600",
)

WORKFLOW = procure_to_pay(
    budget_approval(),
    po_sent({"span_name": "send PO"}, sla="30m"),
    keys=PO_KEYS,
    key_patterns=PO_KEY_PATTERNS,
)


class DashboardServer:
    """The main FastAPI app with the dashboards mounted, around a runtime, on a free loopback port."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        app = create_api_app(runtime)
        mount_dashboards(app, runtime.store, runtime.settings)
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="dashboards", daemon=True)

    def start(self) -> DashboardServer:
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started:
            assert time.time() < deadline, "the dashboards server did not start"
            time.sleep(0.05)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)


def serve_dashboards(server: LiveServer) -> DashboardServer:
    assert server.runtime is not None
    return DashboardServer(server.runtime).start()


class Estate:
    """Services emitting real OTLP through the SDK to the live server."""

    def __init__(self, server: LiveServer) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.providers: list[Any] = []

        def tracer(service: str) -> Any:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            exporter = OTLPSpanExporter(endpoint=f"{server.otlp_http}/v1/traces")
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            self.providers.append(provider)
            return provider.get_tracer("dashboards-test")

        self.erp = tracer("erp-procurement")
        self.saas = tracer("approval-saas")

    def requisition(self, po: str, facility: str, amount: float) -> None:
        from opentelemetry.trace import SpanKind

        attrs = {"erp.po_number": po, "facility.id": facility, "erp.amount": amount}
        with self.erp.start_as_current_span("POST /requisitions", kind=SpanKind.SERVER, attributes=attrs):
            pass

    def completed(self, po: str, facility: str, amount: float) -> None:
        from opentelemetry.trace import SpanKind

        attrs = {"erp.po_number": po, "facility.id": facility, "erp.amount": amount}
        with self.erp.start_as_current_span("POST /requisitions", kind=SpanKind.SERVER, attributes=attrs):
            with self.saas.start_as_current_span("approve", kind=SpanKind.SERVER):
                pass
            with self.erp.start_as_current_span(
                "send PO", kind=SpanKind.PRODUCER, attributes={"messaging.destination.name": "erp.po.out"}
            ):
                pass

    def blocked_by_approval_saas(self, po: str, facility: str = "STM-ICU", amount: float = 182000.0) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attrs = {"erp.po_number": po, "facility.id": facility, "erp.amount": amount}
        with self.erp.start_as_current_span("POST /requisitions", kind=SpanKind.SERVER, attributes=attrs):
            with self.erp.start_as_current_span(
                "POST approval-saas /requests",
                kind=SpanKind.CLIENT,
                attributes={"peer.service": "approval-saas", "http.response.status_code": 503},
            ) as call:
                call.set_status(Status(StatusCode.ERROR, "approval-saas returned 503 Service Unavailable"))

    def close(self) -> None:
        for provider in self.providers:
            provider.shutdown()


@pytest.fixture(scope="session")
def populated(chdb_path: Path) -> Iterator[tuple[LiveServer, DashboardServer]]:
    """A live server holding real transactions (completed, blocked, stalled, in progress) and queue samples,
    and the dashboards served around its runtime."""
    from correlator import Correlator

    settings = server_settings(
        chdb_path,
        facilities=FACILITIES,
        workflows=[WORKFLOW],
        queues=[{"name": "wf.approvals", "kind": "push"}],
        correlation={"enabled": False, "settle": 0.3},
        redaction={"enabled": False},
    )
    server = LiveServer(settings).start()
    estate = Estate(server)
    try:
        estate.completed("4500000001", "STM-ICU", 12000.0)
        estate.blocked_by_approval_saas("4500000002")
        estate.requisition("4500000003", "CLN-04", 950.0)
        estate.requisition("4500000004", "STM-ICU", 64000.0)
        estate.blocked_by_approval_saas("4500000005", "CLN-04", 2300.0)
        for backlog in (40, 90, 160):
            sample = [{"name": "wf.approvals", "system": "rabbitmq", "backlog": backlog, "consumers": 0}]
            assert httpx.post(f"{server.api}/api/v1/queues/samples", json=sample).status_code == 202
        server.flush()
        time.sleep(0.5)
        assert server.runtime is not None
        correlator = Correlator(server.store, server.runtime.settings)
        correlator.run_once()
        correlator.run_once(datetime.now(UTC) + timedelta(hours=2))  # the human approvals are overdue by then
        dashboards = serve_dashboards(server)
        yield server, dashboards
        dashboards.stop()
    finally:
        estate.close()
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through chromedriver, with a fresh profile; browser console logs kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail(
            "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    profile = tempfile.mkdtemp(prefix="triage-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


ERROR_OVERLAY = ".dash-fe-error__title, .dash-debug-menu__error-count, ._dash-error"


def open_page(driver: Any, url: str, ready: str, timeout: float = 20) -> Any:
    """Load a page and wait until `ready` (a CSS selector) is shown; return that element."""
    from selenium.common.exceptions import TimeoutException

    driver.get(url)
    try:
        return wait_for(driver, ready, timeout)
    except TimeoutException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "failure.png"))
        logs = driver.get_log("browser")
        raise AssertionError(
            f"{url}: {ready} not shown in {timeout}s; page text: {driver.find_element('tag name', 'body').text[:800]!r}; console: {logs}"
        ) from None


def wait_for(driver: Any, css: str, timeout: float = 20) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_until(condition: Any, timeout: float = 20, message: str = "") -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, message or "condition not met in time"
        time.sleep(0.1)


def assert_healthy(driver: Any) -> None:
    """No error in the browser console, no Dash error overlay, no loading spinner left."""
    from selenium.webdriver.common.by import By

    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"browser console errors: {severe}"
    overlays = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ERROR_OVERLAY) if e.is_displayed()]
    assert not overlays, f"Dash shows errors: {overlays}"


def screenshot(driver: Any, artifacts: Path, name: str) -> Path:
    """Save the whole page (the window grown to the document's height) under artifacts/dashboards/."""
    height = driver.execute_script("return Math.max(document.body.scrollHeight, 900)")
    driver.set_window_size(1400, min(int(height) + 40, 6000))
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1600)
    return path
