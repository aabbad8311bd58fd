"""Workflow discovery, from real OTLP through the OpenTelemetry SDK to a running server that has no
workflows configured: the proposal's order, its marks (optional, conditional, human, alternatives, a
loop, a batch with an array of keys) and its YAML, which the configuration loader accepts unchanged.

Two estates. One of our own: equipment requests in a hospital network, each step chosen to show one
mark. And the demo's: the simulator's history (procure-to-pay and the rest) into a server whose
configuration has the facilities but not the workflows, then discovery asked for the PO number."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Tracer, set_span_in_context

from correlator.discover import Discovery, NothingToDiscover, discover
from correlator.discovery_attributes import AttributeStats, Profile, round_between, value_threshold
from correlator.mining import Activity, Case, mine
from correlator.proposal import propose, readable
from simulator.config import DemoOptions, business_settings, demo_config
from simulator.scenario import load_scenario
from simulator.simulation import Simulation
from tests.conftest import LiveServer, server_settings
from triage.settings import Step, load_settings

HOUR = 3600.0
FACILITIES = [
    {"id": "STM-ICU", "name": "St. Mary's ICU", "criticality": "critical"},
    {"id": "CLN-04", "name": "Eastside Clinic", "criticality": "normal"},
]
KEYS = "req.id,approval.ref,receiving.req_ids"
CAPITAL = 100_000.0  # requests at or above this go to the capital committee
SINCE = timedelta(days=4)


@dataclass
class Request:
    n: int
    facility: str
    amount: float
    category: str
    sent_back: bool  # the approver asks for changes: revised, reviewed again (a loop)
    by_edi: bool  # the PO goes by EDI, else through the vendor portal (published, then viewed)
    at: float  # when the last step so far happened (epoch seconds)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = f"REQ-{self.n:05d}"


class Estate:
    """The estate's services, each with its own tracer provider exporting OTLP/HTTP to the server."""

    def __init__(self, otlp: str) -> None:
        self.otlp = otlp
        self.providers: dict[str, TracerProvider] = {}
        self.tracers: dict[str, Tracer] = {}
        self.loggers: dict[str, LoggerProvider] = {}
        self.now = time.time()

    def tracer(self, service: str) -> Tracer:
        if service not in self.tracers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self.otlp}/v1/traces")))
            self.providers[service] = provider
            self.tracers[service] = provider.get_tracer("estate")
        return self.tracers[service]

    def span(
        self,
        service: str,
        name: str,
        at: float,
        kind: SpanKind = SpanKind.SERVER,
        parent: Span | None = None,
        links: list[Link] | None = None,
        **attributes: Any,
    ) -> Span | None:
        """One span at `at` (epoch seconds); none when `at` is still in the future (work not done yet)."""
        if at > self.now:
            return None
        ns = int(at * 1e9)
        context = set_span_in_context(parent) if parent is not None else None
        span = self.tracer(service).start_span(
            name, context=context, kind=kind, start_time=ns, links=links, attributes=attributes
        )
        span.end(end_time=ns + 5_000_000)
        return span

    def log(self, service: str, at: float, span: Span | None, body: str, **attributes: Any) -> None:
        """One OTLP log record at `at`, in the trace of `span`."""
        if at > self.now or span is None:
            return
        if service not in self.loggers:
            provider = LoggerProvider(resource=Resource.create({"service.name": service}))
            exporter = OTLPLogExporter(endpoint=f"{self.otlp}/v1/logs")
            provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
            self.loggers[service] = provider
        ns = int(at * 1e9)
        logger = self.loggers[service].get_logger("estate")
        logger.emit(timestamp=ns, observed_timestamp=ns, context=set_span_in_context(span), body=body,
                    attributes=attributes)  # fmt: skip

    def close(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()
        for logs in self.loggers.values():
            logs.shutdown()


def equipment_requests(estate: Estate, count: int = 60, seed: int = 16) -> list[Request]:
    """Equipment requests over the last three days: requested on the portal → (a message) → the ERP's
    purchasing consumer → budget check → review by a person in the approval SaaS (sent back and reviewed
    again now and then) → the capital committee for requests of CAPITAL or more → the PO by EDI *or*
    through the vendor portal (published, viewed) → received by the twice-daily receiving batch (one span,
    an OTLP array of request ids) → inspected, for biomedical equipment only → paid (a span that names no
    request: its log record does)."""
    rng = random.Random(seed)
    requests: list[Request] = []
    for n in range(count):
        amount = round(rng.lognormvariate(10.3, 1.0), 2)  # median ~30k; a fifth or so at 100k and more
        start = estate.now - 3 * 86400 + n * (56 * HOUR / count)
        category = ["biomed", "it", "furniture"][n % 3]
        r = Request(n, FACILITIES[n % 2]["id"], amount, category, n % 5 == 2, (n // 2) % 2 == 0, start)
        requests.append(r)
        _request(estate, r, rng)
    _receiving_batches(estate, requests, rng)
    return requests


def _request(e: Estate, r: Request, rng: random.Random) -> None:
    attrs = {"req.id": r.key, "facility.id": r.facility, "req.amount": r.amount, "req.category": r.category}
    posted = e.span("eqp-portal", "POST /requests", r.at, **attrs, **{"http.response.status_code": 201})
    mid = uuid.uuid4().hex
    messaging = {"messaging.system": "rabbitmq", "messaging.destination.name": "eqp.requests"}
    producer = e.span(
        "eqp-portal", "eqp.requests publish", r.at + 0.01, SpanKind.PRODUCER, posted,
        **messaging, **{"messaging.message.id": mid},
    )  # fmt: skip
    # The ERP's consumer starts a trace of its own that names no request: linked to the producer, or
    # known by the message id alone. The budget service it calls is a step reached only through that hop.
    r.at += rng.uniform(5, 60)
    links = [Link(producer.get_span_context())] if producer is not None and r.n % 2 else None
    consumer = e.span(
        "erp-purchasing", "eqp.requests process", r.at, SpanKind.CONSUMER, links=links,
        **messaging, **({} if links else {"messaging.message.id": mid}),
    )  # fmt: skip
    call = e.span("erp-purchasing", "POST /budget-checks", r.at + 0.1, SpanKind.CLIENT, consumer)
    e.span("budget-service", "POST /budget-checks", r.at + 0.2, SpanKind.SERVER, call, **{"budget.ok": "true"})
    r.at += rng.lognormvariate(9.5, 0.8)  # a person reviews: hours, very variable
    decision = "changes" if r.sent_back else "approved"
    e.span("approval-saas", "review request", r.at, **{"approval.ref": r.key, "approval.decision": decision})
    if r.sent_back:
        r.at += rng.uniform(600, 3600)
        e.span("eqp-portal", "PUT /requests", r.at, **{"req.id": r.key, "facility.id": r.facility})
        r.at += rng.lognormvariate(8.5, 0.8)
        e.span("approval-saas", "review request", r.at, **{"approval.ref": r.key, "approval.decision": "approved"})
    if r.amount >= CAPITAL:
        r.at += rng.uniform(6 * HOUR, 30 * HOUR)
        e.span("capital-committee", "review capital request", r.at, **{"approval.ref": r.key})
    r.at += rng.uniform(600, 2 * HOUR)
    if r.by_edi:
        e.span("edi-gateway", "send 850", r.at, SpanKind.CLIENT, **{"req.id": r.key})
    else:
        published = e.span("vendor-portal", "publish PO", r.at, **{"req.id": r.key})
        # The portal's own publish to its queue: the same name as the step, another kind (plumbing).
        e.span("vendor-portal", "publish PO", r.at + 0.01, SpanKind.PRODUCER, published, **{"req.id": r.key})
        r.at += rng.uniform(1800, 6 * HOUR)
        e.span("vendor-portal", "PO viewed", r.at, **{"req.id": r.key})
    if r.n == 7:  # a one-off lookup: not a step
        e.span("eqp-portal", "GET /requests/{id}", r.at + 60, **{"req.id": r.key})


def _receiving_batches(e: Estate, requests: list[Request], rng: random.Random) -> None:
    """Twice a day the receiving batch posts every request whose goods came in since its last run."""
    waiting = sorted(requests, key=lambda r: r.at)
    slot = waiting[0].at - waiting[0].at % (12 * HOUR) + 12 * HOUR
    while waiting and slot <= e.now:
        ready = [r for r in waiting if r.at + HOUR <= slot]
        if ready:
            ids = [r.key for r in ready]
            e.span("receiving-batch", "post receipts", slot, SpanKind.INTERNAL, **{"receiving.req_ids": ids})
            for r in ready:
                waiting.remove(r)
                r.at = slot + rng.uniform(HOUR, 3 * HOUR)
                if r.category == "biomed":  # biomedical equipment is inspected before it is paid for
                    e.span("biomed-engineering", "inspect equipment", r.at, **{"req.id": r.key})
                    r.at += rng.uniform(HOUR, 3 * HOUR)
                paid = e.span("erp-finance", "post payment", r.at, SpanKind.INTERNAL)
                e.log("erp-finance", r.at, paid, f"payment posted for {r.key}", **{"req.id": r.key})
        slot += 12 * HOUR


@pytest.fixture(scope="module")
def estate(chdb_path: Path) -> Iterator[tuple[LiveServer, list[Request]]]:
    settings = server_settings(chdb_path, facilities=FACILITIES, correlation={"enabled": False})
    server = LiveServer(settings).start()
    e = Estate(server.otlp_http)
    try:
        requests = equipment_requests(e)
        e.close()
        server.flush()
        yield server, requests
    finally:
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def flat(proposal: Discovery) -> list[tuple[str, str]]:
    """(service, span_name) of every proposed step in order, alternatives in their branches' order."""
    workflow = load_settings(None, {"workflows": [proposal.workflow]}, environ={}).workflows[0]
    return [(s.match.service or "", s.match.span_name or "") for s in workflow.steps]


def step(proposal: Discovery, service: str, span_name: str) -> Step:
    workflow = load_settings(None, {"workflows": [proposal.workflow]}, environ={}).workflows[0]
    return next(s for s in workflow.steps if (s.match.service, s.match.span_name) == (service, span_name))


def test_discovery_proposes_the_estates_flow(estate: tuple[LiveServer, list[Request]], tmp_path: Path) -> None:
    server, requests = estate
    found = discover(server.store, KEYS, datetime.now(UTC) - SINCE, facilities=server.settings.facilities)
    ev = found.evidence
    assert ev.transactions == len(requests)
    paid = next(s for s in ev.steps if s.service == "erp-finance")
    assert ev.log_records == paid.transactions > 0, "the payments are known by their log records alone"
    workflow = found.workflow
    gateway = next(item for item in workflow["steps"] if "one_of" in item)
    branches = [[s["name"] for s in (b if isinstance(b, list) else [b])] for b in gateway["one_of"]]
    assert sorted(branches) == [["publish_po", "po_viewed"], ["send_850"]], found.yaml
    alternatives = {("edi-gateway", "send 850"), ("vendor-portal", "publish PO"), ("vendor-portal", "PO viewed")}
    assert [m for m in flat(found) if m not in alternatives] == [
        ("eqp-portal", "POST /requests"),
        ("erp-purchasing", "eqp.requests process"),  # the purchasing service shows nothing but its consumer
        ("budget-service", "POST /budget-checks"),  # reached through the message id or the link only
        ("approval-saas", "review request"),
        ("eqp-portal", "PUT /requests"),
        ("capital-committee", "review capital request"),
        ("receiving-batch", "post receipts"),
        ("biomed-engineering", "inspect equipment"),
        ("erp-finance", "post payment"),
    ], found.yaml
    assert workflow["steps"].index(gateway) == 6, "between the capital review and the receipt"
    assert workflow["keys"] == KEYS.split(",")
    assert workflow["value"] == "req.amount" and workflow["facility"] == "facility.id"
    assert workflow["terminal"] == ["post_payment"]

    review = step(found, "approval-saas", "review request")
    assert review.human and not review.optional and review.when is None
    assert review.sla is not None and review.sla.critical and review.sla.normal, "an SLA per criticality"
    assert next(s for s in ev.steps if s.name == review.name).repeated == sum(r.sent_back for r in requests)
    assert step(found, "eqp-portal", "PUT /requests").optional
    capital = step(found, "capital-committee", "review capital request")
    assert capital.when is not None and capital.when.min_value == CAPITAL, found.yaml
    inspection = step(found, "biomed-engineering", "inspect equipment")
    assert inspection.when is not None and inspection.when.attributes == {"req.category": "biomed"}, found.yaml
    assert inspection.when.min_value is None and not inspection.optional
    assert not step(found, "budget-service", "POST /budget-checks").human
    assert not step(found, "receiving-batch", "post receipts").human, "a nightly batch waits long, but not on a person"

    published = step(found, "vendor-portal", "publish PO")
    assert published.match.kind == "server", "the portal's producer span of the same name is told apart"
    # Every request that got that far was received by the batch, whose span lists them in an array.
    batch = next(s for s in ev.steps if s.service == "receiving-batch")
    assert batch.mark == "required" and batch.share == 1.0
    left_out = {(x.service, x.span_name, x.kind) for x in ev.left_out}
    assert ("eqp-portal", "eqp.requests publish", "Producer") not in left_out, "a child producer is not an entry"
    assert ("vendor-portal", "publish PO", "Producer") in left_out
    assert ("eqp-portal", "GET /requests/{id}", "Server") in left_out
    assert any(t.from_step == "review_request" and t.to_step == "put_requests" for t in ev.transitions)

    # The YAML is a configuration file as it stands.
    path = tmp_path / "proposed.yaml"
    path.write_text(found.yaml, "utf-8")
    loaded = load_settings(path, environ={})
    assert [w.name for w in loaded.workflows] == [workflow["name"]]
    assert loaded.workflows[0].model_dump(by_alias=True, exclude_defaults=True) == load_settings(
        None, {"workflows": [workflow]}, environ={}
    ).workflows[0].model_dump(by_alias=True, exclude_defaults=True)


def test_discovery_says_what_it_did_not_find(estate: tuple[LiveServer, list[Request]]) -> None:
    server, _ = estate
    since = datetime.now(UTC) - SINCE
    with pytest.raises(NothingToDiscover, match=r"carries req\.idd.*look close: req\.id"):
        discover(server.store, "req.idd", since)
    with pytest.raises(NothingToDiscover, match="name the attribute"):
        discover(server.store, " , ", since)
    # Without its other names, the key still finds the requests, and the steps that name it.
    alone = discover(server.store, "req.id", since)
    assert ("approval-saas", "review request") not in flat(alone)
    assert ("eqp-portal", "POST /requests") == flat(alone)[0]
    # ...and says where else the same keys are: the approval SaaS and the committee call it approval.ref.
    assert [(r.name, r.services) for r in alone.evidence.related] == [
        ("approval.ref", ["approval-saas", "capital-committee"])
    ]
    assert "give key=req.id,approval.ref" in " ".join(alone.evidence.notes)


# -- the demo's estate ------------------------------------------------------------------------------

DEMO_HOURS = 6.0


@pytest.fixture(scope="module")
def demo(chdb_path: Path) -> Iterator[LiveServer]:
    """The simulator's history, written into a server configured with the demo's facilities only."""
    config = demo_config(1.0, "discover", None, datetime.now(UTC).date())
    workflows = config.pop("workflows")
    config["correlation"].update(enabled=False)
    settings = server_settings(chdb_path, redaction={"enabled": False}, **config)
    server = LiveServer(settings).start()
    try:
        # The simulator needs the workflows to play them; the server that watches it does not have them.
        played = load_settings(None, {"workflows": workflows}, environ={}).workflows
        options = DemoOptions(speed=1.0, seed=16, backfill=DEMO_HOURS * HOUR, broker="memory")
        simulation = Simulation(
            settings.model_copy(update={"workflows": played}), business_settings(), load_scenario(), options
        )
        run = simulation.start()
        while run.backfilling:
            run.turn(time.time())
        run.finish()
        server.flush()
        yield server
    finally:
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def test_discovery_finds_the_demos_procure_to_pay(demo: LiveServer) -> None:
    since = datetime.now(UTC) - timedelta(hours=DEMO_HOURS + 1)
    keys = "erp.po_number,po.number,receiving.po_numbers"
    found = discover(demo.store, keys, since, facilities=demo.settings.facilities)
    real = business_settings().workflows[0]
    assert real.name == "procure_to_pay"
    proposed = flat(found)
    wanted = [(s.match.service or "", s.match.span_name or "") for s in real.steps]
    assert [m for m in proposed if m in wanted] == wanted, found.yaml
    assert step(found, "approval-saas", "approve").human
    capital = step(found, "capital-committee", "review capital request")
    assert capital.when is not None and capital.when.min_value is not None
    assert 40_000 <= capital.when.min_value <= 60_000, found.yaml
    gateway = next(item for item in found.workflow["steps"] if "one_of" in item)
    assert {b["match"]["service"] for b in gateway["one_of"]} == {"erp-inventory", "receiving-batch"}
    assert found.workflow["value"] == "erp.amount" and found.workflow["facility"] == "facility.id"
    posted = step(found, "erp-finance", "post voucher")
    assert posted.sla is not None and posted.sla.normal is not None
    assert found.workflow["terminal"] == [posted.name]
    facilities = [f.model_dump(mode="json") for f in demo.settings.facilities]
    load_settings(None, {"facilities": facilities, **yaml.safe_load(found.yaml)}, environ={})


def test_discovery_finds_every_demo_workflow_in_order(demo: LiveServer) -> None:
    since = datetime.now(UTC) - timedelta(hours=DEMO_HOURS + 1)
    for real in business_settings().workflows:
        found = discover(demo.store, real.keys, since, facilities=demo.settings.facilities)
        wanted = [(s.match.service or "", s.match.span_name or "") for s in real.steps]
        assert [m for m in flat(found) if m in wanted] == wanted, (real.name, found.yaml)
        # The steps that wait on a person by design: long waits in an approval service.
        for name in ("budget_approval", "compliance_review"):
            if (person := real.step(name)) is not None:
                assert step(found, person.match.service or "", person.match.span_name or "").human, found.yaml


# -- the proposal for any flow ---------------------------------------------------------------------

_NAMES = st.sampled_from(["", "approve", "POST /orders", "承認", "a: b", "#x", "- y", "{z}", "'q'", '"', "x" * 90])
_ACTIVITIES = st.builds(
    Activity, _NAMES, _NAMES, st.sampled_from(["Server", "Internal", "Client", "Producer", "Consumer", "Unspecified"])
)


@st.composite
def _cases(draw: st.DrawFn) -> list[Case]:
    activities = draw(st.lists(_ACTIVITIES, min_size=1, max_size=8, unique=True))
    cases = []
    for n in range(draw(st.integers(2, 30))):
        steps = draw(st.lists(st.sampled_from(activities), min_size=1, max_size=10))
        gaps = draw(st.lists(st.floats(0, 1e6), min_size=len(steps), max_size=len(steps)))
        at = 1.7e9 + n * 60.0
        events = []
        for activity, gap in zip(steps, gaps, strict=True):
            at += gap
            events.append((at, activity))
        attributes = {"amount": str(draw(st.floats(0, 1e6))), "kind": draw(st.sampled_from(["a", "b", "c"]))}
        cases.append(Case(f"K{n}", events, attributes))
    return cases


@settings(max_examples=150, deadline=None)
@given(cases=_cases(), name=st.one_of(st.none(), _NAMES.filter(bool)))
def test_any_flow_gives_a_workflow_the_loader_takes(cases: list[Case], name: str | None) -> None:
    flow = mine(cases)
    assume(flow.order)
    first = flow.order[0]
    profile = Profile(
        [
            AttributeStats(first, "kind", 10, 10, 0, 0.0, 0.0, 3, 0),
            AttributeStats(first, "amount", 10, 10, 10, 5e5, 2e5, 10, 0),
        ],
        {},
    )
    since, until = datetime.fromtimestamp(1.69e9, UTC), datetime.fromtimestamp(1.8e9, UTC)
    found = propose(
        flow, cases, profile, keys=["k.id"], since=since, until=until, value=None, facilities=[], name=name,
        margin=1.5, log_records=0,
    )  # fmt: skip
    loaded = load_settings(None, yaml.safe_load(found.yaml), environ={}).workflows[0]
    assert loaded == load_settings(None, {"workflows": [found.workflow]}, environ={}).workflows[0]
    assert len(found.evidence.steps) == len(loaded.steps) == len(flow.order)
    assert set(loaded.terminal) <= {s.name for s in loaded.steps}


def _flow_of(*paths: tuple[list[str], int]) -> list[Case]:
    """Cases that take each path (step names, one a minute apart) the number of times given."""
    cases = []
    for names, times in paths:
        for _ in range(times):
            n = len(cases)
            events = [(1.7e9 + n * 3600 + 60 * i, Activity("svc", name, "Server")) for i, name in enumerate(names)]
            cases.append(Case(f"K{n}", events))
    return cases


def test_alternatives_at_the_end_of_a_flow_are_a_gateway() -> None:
    flow = mine(_flow_of((["start", "edi"], 30), (["start", "portal", "viewed"], 20), (["start"], 5)))
    assert [[a.span_name for a in branch] for g in flow.gateways for branch in g.branches] == [
        ["edi"],
        ["portal", "viewed"],
    ]
    # Not one that only part of those that got that far take: then they are optional steps.
    flow = mine(_flow_of((["start", "edi", "end"], 30), (["start", "portal", "end"], 20), (["start", "end"], 20)))
    assert flow.gateways == []


def test_round_numbers_and_readable_durations() -> None:
    assert round_between(47_310, 52_800) == 50_000
    assert round_between(97_000, 250_000) == 100_000
    assert round_between(48_000, 49_000) == 49_000
    assert [readable(s) for s in (0.2, 44, 61, 3 * 3600 + 1, 20 * 3600, 40 * 86400)] == [
        "1s",
        "45s",
        "2m",
        "4h",
        "1d",
        "40d",
    ]
    assert value_threshold([(v, v >= 50_000) for v in (1e3, 2e4, 4.9e4, 5.2e4, 8e4, 1.5e5)]) == (50_000, 1.0)
    assert value_threshold([(v, v % 2 == 0) for v in range(40)]) is None, "no cut explains alternate values"
