"""Correlator shards on the embedded store: three workers in threads share the transactions by hash, one
dies in the middle of a cycle, the others take its shard over from its watermark, and the verdicts are
the ones a single correlator gives. Real OTLP through the SDK to a running server; real leases in the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, set_span_in_context

from correlator import Correlator, ShardWorker
from correlator.engine import EPOCH
from tests.conftest import LiveServer, server_settings
from triage.settings import Settings, Shard, load_settings
from triage.store import Store

SHARDS = 3
LEASE = 2.0  # seconds: a dead worker's shard is taken over this long after its last renewal
WORKFLOW: dict[str, Any] = {
    "name": "invoice_match",
    "keys": ["ap.invoice_id"],
    "facility": "facility.id",
    "steps": [
        {"name": "received", "match": {"service": "ap-inbox", "span_name": "receive invoice"}},
        {"name": "matched", "match": {"service": "matching-engine", "span_name": "match"}, "sla": {"normal": "30m"}},
        {"name": "approved", "match": {"service": "ap-approvals", "span_name": "approve"}, "human": True,
         "sla": {"normal": "1h"}},
        {"name": "posted", "match": {"service": "erp-gl", "span_name": "post"}, "sla": {"normal": "15m"}},
    ],
    "terminal": ["posted"],
}  # fmt: skip
BUSINESS_TABLES = ("business_events", "business_transactions", "transaction_causes", "trace_keys", "trace_edges")


class Killed(BaseException):
    """A worker's sudden death: not an Exception, so no handler of the worker catches it."""


class DyingStore(Store):
    """A worker's own handle on the store that can die at its next verdict write, and that records which
    transactions it wrote verdicts for, and when."""

    def __init__(self, dsn: str, name: str, writes: list[tuple[float, str, list[str]]]) -> None:
        super().__init__(dsn)
        self.name = name
        self.writes = writes
        self.armed = False

    def insert(
        self, table: str, rows_or_columns: Sequence[Sequence[Any]], column_names: Sequence[str], **kw: Any
    ) -> None:
        if table == "business_transactions":
            if self.armed:
                raise Killed(self.name)
            keys = [row[list(column_names).index("Key")] for row in rows_or_columns]
            self.writes.append((time.monotonic(), self.name, keys))
        super().insert(table, rows_or_columns, column_names, **kw)


class Invoices:
    """Accounts-payable services exporting OTLP/HTTP; each invoice takes one of five paths by its number."""

    def __init__(self, server: LiveServer) -> None:
        self.providers: list[TracerProvider] = []
        self.tracers = {s: self._tracer(server, s) for s in ("ap-inbox", "matching-engine", "ap-approvals", "erp-gl")}

    def _tracer(self, server: LiveServer, service: str) -> Tracer:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.otlp_http}/v1/traces")))
        self.providers.append(provider)
        return provider.get_tracer("sharding")

    def step(self, service: str, name: str, invoice: str, ago: timedelta, error: int = 0) -> None:
        at = int((datetime.now(UTC) - ago).timestamp() * 1e9)
        tracer = self.tracers[service]
        span = tracer.start_span(
            name, kind=SpanKind.SERVER, start_time=at, attributes={"ap.invoice_id": invoice, "facility.id": "CLN-04"}
        )
        if error:  # the step's own call to a dependency that keeps failing
            for _ in range(4):
                call = tracer.start_span(
                    "POST erp-gl /journal",
                    context=set_span_in_context(span),
                    kind=SpanKind.CLIENT,
                    start_time=at,
                    attributes={"peer.service": "erp-gl", "http.response.status_code": error},
                )
                call.set_status(Status(StatusCode.ERROR, f"erp-gl returned {error}"))
                call.end(end_time=at + 1_000_000)
        span.end(end_time=at + 2_000_000)

    def send(self, numbers: range) -> dict[str, tuple[str, str | None]]:
        """Send the invoices; what each one's state and cause kind must be."""
        expected: dict[str, tuple[str, str | None]] = {}
        for n in numbers:
            invoice = f"INV-{n:05d}"
            path = n % 4
            if path == 0:  # done, quickly
                for service, name in (("ap-inbox", "receive invoice"), ("matching-engine", "match"),
                                      ("ap-approvals", "approve"), ("erp-gl", "post")):  # fmt: skip
                    self.step(service, name, invoice, timedelta(minutes=20))
                expected[invoice] = ("completed", None)
            elif path == 1:  # matched three hours ago, nobody approved it
                self.step("ap-inbox", "receive invoice", invoice, timedelta(hours=3, minutes=5))
                self.step("matching-engine", "match", invoice, timedelta(hours=3))
                expected[invoice] = ("stalled", "awaiting_approval")
            elif path == 2:  # approved an hour ago, posting fails against a broken general ledger
                self.step("ap-inbox", "receive invoice", invoice, timedelta(hours=2))
                self.step("matching-engine", "match", invoice, timedelta(hours=2))
                self.step("ap-approvals", "approve", invoice, timedelta(hours=1), error=503)
                expected[invoice] = ("blocked", "dependency_error")
            else:  # just arrived
                self.step("ap-inbox", "receive invoice", invoice, timedelta(minutes=1))
                expected[invoice] = ("in_progress", None)
        return expected

    def close(self) -> None:
        for provider in self.providers:
            provider.shutdown()


@pytest.fixture
def estate(chdb_path: Any) -> Iterator[tuple[LiveServer, Invoices]]:
    settings = server_settings(
        chdb_path,
        workflows=[WORKFLOW],
        facilities=[{"id": "CLN-04", "name": "Eastside Clinic", "criticality": "normal"}],
        # The server only collects: the test's workers correlate.
        correlation={"enabled": False, "interval": 0.3, "settle": 0.2, "lease": LEASE, "overlap": 2},
        alerts={"enabled": False},
    )
    server = LiveServer(settings).start()
    invoices = Invoices(server)
    try:
        yield server, invoices
    finally:
        invoices.close()
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def verdicts(store: Store) -> dict[str, tuple[str, str | None]]:
    rows = store.query("SELECT Key, State, CauseKind FROM business_transactions FINAL").result_rows
    return {key: (state, kind or None) for key, state, kind in rows}


def owners(store: Store) -> dict[str, int]:
    """Each transaction's shard, 1-based, by the hash the workers own them by."""
    sql = f"SELECT Key, cityHash64(Workflow, Key) % {SHARDS} + 1 FROM business_transactions FINAL"
    return {key: int(shard) for key, shard in store.query(sql).result_rows}


class Running:
    """A shard worker cycling in a thread until stopped (or until its store kills it)."""

    def __init__(self, store: Store, settings: Settings, index: int, holder: str) -> None:
        worker_settings = settings.model_copy(update={"shard": Shard(index=index, count=SHARDS)})
        self.worker = ShardWorker(store, worker_settings, holder=holder)
        self.stop = threading.Event()
        self.died: BaseException | None = None
        self.cycles = 0
        self.thread = threading.Thread(target=self._run, name=holder, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self.worker.run_once()
                self.cycles += 1
                self.stop.wait(0.3)
        except Killed as exc:
            self.died = exc

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(60)
        self.worker.release()


def settle(store: Store, expected: dict[str, tuple[str, str | None]], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    got: dict[str, Any] = {}
    while time.monotonic() < deadline:
        got = verdicts(store)
        if got == expected:
            return got
        time.sleep(0.3)
    return got


def test_shards_split_the_work_survive_a_death_and_agree_with_one_correlator(
    estate: tuple[LiveServer, Invoices],
) -> None:
    server, invoices = estate
    dsn, settings = server.settings.store, server.settings
    writes: list[tuple[float, str, list[str]]] = []
    stores = {name: DyingStore(dsn, name, writes) for name in ("w1", "w2", "w3")}
    # Holder names as the product writes them (host:pid:role:id), of a host that is not this one, so
    # that a lapsed lease is waited for as on a server.
    workers = {name: Running(stores[name], settings, int(name[1]), f"peer:{i}:correlator:{name}")
               for i, name in enumerate(stores, 1)}  # fmt: skip

    expected = invoices.send(range(0, 40))
    server.flush()
    got = settle(server.store, expected)
    assert got == expected, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    by_shard = {s: {k for k, o in owners(server.store).items() if o == s} for s in range(1, SHARDS + 1)}
    assert all(by_shard.values()), f"forty invoices should fall on every one of {SHARDS} shards: {by_shard}"
    for _, name, keys in writes:  # each worker judged its own shard's transactions only
        assert set(keys) <= by_shard[int(name[1])], (name, set(keys) - by_shard[int(name[1])])

    # Worker 2 dies at its next verdict write, after stitching the new telemetry of its shard.
    stores["w2"].armed = True
    died_at = time.monotonic()
    expected |= invoices.send(range(40, 80))
    server.flush()
    workers["w2"].thread.join(30)
    assert isinstance(workers["w2"].died, Killed), "worker 2 should have died in a cycle"
    got = settle(server.store, expected)
    assert got == expected, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}

    # Shard 2 was finished by one of the others, from its watermark, never by two at once.
    shard2 = {k for k, o in owners(server.store).items() if o == 2}
    takers = {name for at, name, keys in writes if at > died_at and set(keys) & shard2}
    assert len(takers) == 1 and takers <= {"w1", "w3"}, takers
    assert not [1 for at, name, _ in writes if name == "w2" and at > died_at]
    taker = workers[takers.pop()].worker
    assert Shard(index=2, count=SHARDS) in taker.held()
    claims = server.store.query(
        "SELECT Term, argMin(Holder, At) FROM triage_leases WHERE Name = 'correlator/2/3' AND Kind = 'claim' "
        "GROUP BY Term ORDER BY Term"
    ).result_rows
    assert claims == [(1, "peer:2:correlator:w2"), (2, taker.holder)], "the taker won the next term"

    # Worker 2 comes back: it asks for its shard and gets it back.
    stores["w2"].armed = False
    back = Running(stores["w2"], settings, 2, "peer:2:correlator:w2-restarted")
    deadline = time.monotonic() + 30
    while Shard(index=2, count=SHARDS) not in back.worker.held() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Shard(index=2, count=SHARDS) in back.worker.held()
    assert Shard(index=2, count=SHARDS) not in taker.held()
    for running in (workers["w1"], workers["w3"], back):
        running.halt()

    # One correlator over the same raw telemetry, from scratch, gives the same verdicts.
    sharded = verdicts(server.store)
    for table in (*BUSINESS_TABLES, "correlator_state"):
        server.store.command(f"TRUNCATE TABLE {table}")
    single = Correlator(server.store, settings)
    for _ in range(3):  # the first cycle holds back work it finds late; the next ones judge it
        single.run_once()
        time.sleep(0.3)
    assert verdicts(server.store) == sharded == expected


def test_a_new_shard_starts_from_another_layouts_watermark_never_from_its_peers(store: Store) -> None:
    settings = load_settings(None, {"store": store.dsn, "workflows": [WORKFLOW]}, environ={})
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def mark(name: str, minutes: int) -> None:
        store.insert("correlator_state", [[name, t0 + timedelta(minutes=minutes)]], ["Name", "Watermark"])

    def watermark(index: int, count: int) -> datetime:
        return Correlator(store, settings, Shard(index=index, count=count)).watermark()

    assert watermark(2, 3) == EPOCH, "a store nobody correlated starts from the beginning"
    mark("correlator/1/3", 30)  # a peer of the same layout got going first: its keys are not ours
    assert watermark(2, 3) == EPOCH
    mark("correlator", 10)  # the single correlator before the store was sharded
    assert watermark(2, 3) == t0 + timedelta(minutes=10)
    mark("correlator/2/3", 20)
    assert watermark(2, 3) == t0 + timedelta(minutes=20), "its own watermark once it has one"
    # Back to one correlator, or on to two shards: from the slowest of the other layouts.
    store.command("TRUNCATE TABLE correlator_state")
    mark("correlator/1/3", 30)
    mark("correlator/2/3", 20)
    mark("correlator/3/3", 25)
    assert watermark(1, 1) == watermark(2, 2) == t0 + timedelta(minutes=20)
