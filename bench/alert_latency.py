"""Alert latency: from a transaction's blocked state in the store to the alert at its receivers.

Run: python bench/alert_latency.py [--trials 10] [--interval 1s] [--group-wait 100ms]

Starts a real Alertmanager (its webhook receiver and a Triage webhook both point at a local HTTP
server) and `triage serve` with the alert evaluator on an embedded store in a temporary directory.
Each trial blocks one critical PO through the OpenTelemetry SDK (ERP → approval-saas 503), runs one
correlation cycle, and takes the moment that cycle has written the transaction's blocked state as
"detected". It then times: the Triage webhook's arrival, the alert's first appearance in
Alertmanager's API (GET /api/v2/alerts, polled every 10 ms) and Alertmanager's own notification
(after its group_wait). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from app.runtime import Runtime  # noqa: E402
from app.server import serve  # noqa: E402
from correlator import Correlator  # noqa: E402
from tests.conftest import free_port, serve_posts  # noqa: E402
from tests.workflows import ST_MARYS_ICU, po_sent, procure_to_pay  # noqa: E402
from triage.durations import parse_duration  # noqa: E402
from triage.settings import load_settings  # noqa: E402

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
RULE = "bench_critical_po_blocked"


class Arrivals:
    """A local HTTP server noting when each PO's alert first arrives, per path."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.server = serve_posts(self._note)

    def _note(self, request: BaseHTTPRequestHandler) -> int:
        at = time.time()
        body = json.loads(request.rfile.read(int(request.headers.get("Content-Length", 0))))
        alerts = body["alerts"] if "alerts" in body else [body["alert"]]
        for alert in alerts:
            if body.get("status") == "firing" or alert.get("status") == "firing":
                self.seen.setdefault((request.path, alert["labels"].get("key", "")), at)
        return 200

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


def start_alertmanager(tmp: Path, arrivals: Arrivals, group_wait: str) -> tuple[subprocess.Popen[bytes], str]:
    config = tmp / "alertmanager.yml"
    config.write_text(
        f"route: {{receiver: hook, group_by: [alertname, key], group_wait: {group_wait}, group_interval: 1s,"
        " repeat_interval: 1h}\n"
        f"receivers: [{{name: hook, webhook_configs: [{{url: '{arrivals.url('/am')}'}}]}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("Alertmanager did not start")


def settings_for(tmp: Path, am_url: str, arrivals: Arrivals, interval: float) -> Any:
    workflow = procure_to_pay(po_sent({"attributes": {"messaging.destination.name": "erp.po.out"}}))
    rule = {"name": RULE, "when": {"state": ["blocked"], "criticality": ["critical"]}, "group_by": ["workflow", "key"]}
    values = {
        "store": f"chdb://{tmp / 'data'}",
        "port": free_port(),
        "otlp_http_port": free_port(),
        "otlp_grpc_port": free_port(),
        "log_level": "warning",
        "facilities": [ST_MARYS_ICU],
        "workflows": [workflow],
        "correlation": {"enabled": False, "settle": 0.2},
        "alerts": {
            "alertmanager_url": am_url,
            "webhooks": [{"url": arrivals.url("/hook")}],
            "interval": interval,
            "rules": [rule],
        },
    }
    return load_settings(None, values, environ={})


def run_server(settings: Any) -> tuple[Runtime, asyncio.AbstractEventLoop, asyncio.Event, threading.Thread]:
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        ready["loop"], ready["stop"] = asyncio.get_running_loop(), asyncio.Event()
        await serve(
            settings,
            stop=ready["stop"],
            on_ready=lambda rt: (ready.__setitem__("runtime", rt), started.set()),
        )

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    if not started.wait(60):
        raise SystemExit("triage serve did not start")
    return ready["runtime"], ready["loop"], ready["stop"], thread


def correlate(correlator: Correlator) -> None:
    """One correlation cycle."""
    correlator.run_once()


def block(tracer: Any, po: str) -> None:
    attrs = {"erp.po_number": po, "facility.id": "STM-ICU", "erp.amount": 182000.0}
    with tracer.start_as_current_span("POST /requisitions", kind=SpanKind.SERVER, attributes=attrs):
        call = {"peer.service": "approval-saas", "http.response.status_code": 503}
        with tracer.start_as_current_span("POST approval-saas /requests", kind=SpanKind.CLIENT, attributes=call) as s:
            s.set_status(Status(StatusCode.ERROR, "approval-saas returned 503"))


def wait_am_api(am_url: str, po: str, timeout: float = 30) -> float:
    deadline = time.time() + timeout
    with httpx.Client() as client:
        while time.time() < deadline:
            found = client.get(f"{am_url}/api/v2/alerts", params={"filter": f'key="{po}"'}).json()
            if found:
                return time.time()
            time.sleep(0.01)
    raise SystemExit(f"the alert for PO {po} never reached Alertmanager")


def wait_arrival(arrivals: Arrivals, path: str, po: str, timeout: float = 30) -> float:
    deadline = time.time() + timeout
    while (path, po) not in arrivals.seen:
        if time.time() > deadline:
            raise SystemExit(f"no {path} notification for PO {po}")
        time.sleep(0.005)
    return arrivals.seen[(path, po)]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--interval", default="1s", help="alerts.interval of the evaluator")
    parser.add_argument("--group-wait", default="100ms", help="Alertmanager's group_wait")
    args = parser.parse_args()
    if not shutil.which(ALERTMANAGER):
        raise SystemExit("needs prometheus-alertmanager: apt-get install prometheus-alertmanager")
    interval = parse_duration(args.interval)
    tmp = Path(tempfile.mkdtemp(prefix="triage-alert-bench-"))
    arrivals = Arrivals()
    am, am_url = start_alertmanager(tmp, arrivals, args.group_wait)
    settings = settings_for(tmp, am_url, arrivals, interval)
    runtime, loop, stop, thread = run_server(settings)
    provider = TracerProvider(resource=Resource.create({"service.name": "erp-procurement"}))
    endpoint = f"http://127.0.0.1:{settings.otlp_http_port}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("bench")
    correlator = Correlator(runtime.store, settings)
    results: dict[str, list[float]] = {"webhook": [], "alertmanager_api": [], "alertmanager_notify": []}
    cycles: list[float] = []
    try:
        for i in range(args.trials):
            po = f"45{i:08d}"
            block(tracer, po)
            runtime.pipeline.flush(30)
            time.sleep(0.3)  # past the correlator's settle time
            started = time.perf_counter()
            correlate(correlator)
            detected = time.time()
            cycles.append(time.perf_counter() - started)
            results["alertmanager_api"].append(wait_am_api(am_url, po) - detected)
            results["webhook"].append(wait_arrival(arrivals, "/hook", po) - detected)
            results["alertmanager_notify"].append(wait_arrival(arrivals, "/am", po) - detected)
            time.sleep(interval * (i % 3) / 3)  # detections land at different points of the evaluator's cycle
        evaluator = runtime.evaluator
        evaluation = evaluator.last.seconds if evaluator and evaluator.last else float("nan")
    finally:
        provider.shutdown()
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        am.terminate()
        am.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    table = Table(title=f"detection → notification, {args.trials} POs, alerts.interval {args.interval}")
    for column in ("path", "p50 s", "p95 s", "max s"):
        table.add_column(column, justify="right" if column != "path" else "left")
    figures: dict[str, Any] = {"trials": args.trials, "interval_s": interval, "group_wait": args.group_wait}
    for path, values in results.items():
        s = summary(values)
        table.add_row(path, f"{s['p50']:.3f}", f"{s['p95']:.3f}", f"{s['max']:.3f}")
        figures.update({f"{path}_{k}_s": round(v, 4) for k, v in s.items()})
    figures["correlation_cycle_p50_s"] = round(statistics.median(cycles), 4)
    figures["evaluation_cycle_s"] = round(evaluation, 4)
    Console().print(table)
    Console().print(
        f"correlation cycle p50 {figures['correlation_cycle_p50_s']:.3f}s, "
        f"last evaluation cycle {figures['evaluation_cycle_s']:.3f}s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
