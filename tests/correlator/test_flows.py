"""Workflows that are not a line: conditional steps, optional steps, alternative paths, and the keys of
a workflow in canonical form (the SQL that stitching runs agrees with the Python the API runs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from correlator.machine import QueueInfo, evaluate
from correlator.rules import Params, canonical_keys_expr, span_keys_expr
from tests.correlator.test_machine import ctx, ev
from triage.errors import ConfigError
from triage.settings import KeyFormat, Workflow, load_settings
from triage.store import Store


def flow(*steps: dict[str, Any], terminal: str = "done") -> Workflow:
    return Workflow.model_validate(
        {
            "name": "p2p",
            "keys": ["po"],
            "steps": [{"name": "start", "match": {"span_name": "start"}}, *steps],
            "terminal": [terminal],
        }
    )


def step(name: str, sla: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "match": {"service": name}, **extra}
    if sla:
        out["sla"] = {"normal": sla}
    return out


CAPITAL = flow(
    step("approval", "4h", human=True),
    step("committee", "2h", human=True, when={"min_value": 250_000}),
    step("done", "1h"),
)


def judged(workflow: Workflow, minutes: float, *events: Any) -> tuple[str, str | None, str | None, str]:
    v = evaluate(workflow, list(events), ctx(minutes, "normal"))
    return v.state, v.cause.kind if v.cause else None, v.cause.component if v.cause else None, v.next_step


def test_a_conditional_step_applies_only_when_it_holds() -> None:
    large = [ev("start", 0, value=400_000), ev("approval", 10, value=0)]
    small = [ev("start", 0, value=4_000), ev("approval", 10, value=0)]
    # Large: the committee's 2 h count and its overdue wait is awaiting_approval on the committee.
    assert judged(CAPITAL, 100, *large) == ("in_progress", None, None, "committee")
    assert judged(CAPITAL, 140, *large) == ("stalled", "awaiting_approval", "committee", "committee")
    # Small: the committee does not exist; the next step's 1 h counts from the approval.
    assert judged(CAPITAL, 60, *small) == ("in_progress", None, None, "done")
    assert judged(CAPITAL, 80, *small) == ("stalled", "unknown", "done", "done")
    # The value is the transaction's, from whichever event carries it; at the threshold it holds.
    assert judged(CAPITAL, 140, ev("start", 0, value=250_000), ev("approval", 10))[:3] == (
        "stalled",
        "awaiting_approval",
        "committee",
    )


def test_conditions_on_attributes_held_by_any_event() -> None:
    wf = flow(
        step("shipped", "1h"),
        step("inspection", "30m", human=True, when={"attributes": {"category": "biomed"}, "min_value": 1000}),
        step("done", "2h"),
    )
    biomed = ev("start", 0, attributes={"category": "biomed"}, value=5_000)
    assert judged(wf, 50, biomed, ev("shipped", 10, value=0))[:3] == ("stalled", "awaiting_approval", "inspection")
    other = ev("start", 0, attributes={"category": "linen"}, value=5_000)
    assert judged(wf, 50, other, ev("shipped", 10, value=0)) == ("in_progress", None, None, "done")
    cheap = ev("start", 0, attributes={"category": "biomed"}, value=500)  # both conditions must hold
    assert judged(wf, 50, cheap, ev("shipped", 10, value=0)) == ("in_progress", None, None, "done")
    # A step that does not apply and ends the flow: the transaction is done without it.
    last = flow(step("done", "1h"), step("sign_off", "1h", when={"min_value": 10**6}), terminal="sign_off")
    assert judged(last, 500, ev("start", 0, value=10), ev("done", 10, value=0))[0] == "completed"
    assert judged(last, 500, ev("start", 0, value=10**7), ev("done", 10))[:3] == ("stalled", "unknown", "sign_off")


def test_an_optional_step_not_reached_never_makes_a_transaction_overdue() -> None:
    wf = flow(step("ack", "10m", optional=True), step("done", "1h"))
    assert judged(wf, 30, ev("start", 0)) == ("in_progress", None, None, "done")
    assert judged(wf, 61, ev("start", 0))[:3] == ("stalled", "unknown", "done")
    # Reached, the optional step is progress: the next SLA counts from it.
    assert judged(wf, 61, ev("start", 0), ev("ack", 30)) == ("in_progress", None, None, "done")


ALTERNATIVES = flow(
    step("approval", "1h", human=True),
    {"one_of": [step("edi", "30m"), [step("published", "2h"), step("viewed", "1h", human=True)]]},
    step("done", "1d"),
)


def test_alternative_paths_each_with_its_own_sla() -> None:
    approved = [ev("start", 0), ev("approval", 10)]
    # Late for EDI, not for the portal: still in progress; late for both: stalled at the longer one.
    assert judged(ALTERNATIVES, 60, *approved) == ("in_progress", None, None, "published")
    assert judged(ALTERNATIVES, 131, *approved) == ("stalled", "unknown", "published", "published")
    # Either branch satisfies the flow.
    assert judged(ALTERNATIVES, 500, *approved, ev("edi", 20)) == ("in_progress", None, None, "done")
    portal = [*approved, ev("published", 20), ev("viewed", 90)]
    assert judged(ALTERNATIVES, 500, *portal) == ("in_progress", None, None, "done")
    # Inside a branch the branch's next step is due, with its own SLA and human flag.
    assert judged(ALTERNATIVES, 81, *approved, ev("published", 20))[:3] == ("stalled", "awaiting_approval", "viewed")
    assert judged(ALTERNATIVES, 5000, *portal, ev("done", 100))[0] == "completed"


def test_alternatives_are_late_only_when_no_branch_has_time_left() -> None:
    no_sla = flow(step("approval", "1h"), {"one_of": [step("edi", "30m"), step("fax")]}, step("done", "1h"))
    assert judged(no_sla, 10_000, ev("start", 0), ev("approval", 10)) == ("in_progress", None, None, "fax")


def test_the_flow_graph_as_written() -> None:
    names = [s.name for s in ALTERNATIVES.steps]
    assert names == ["start", "approval", "edi", "published", "viewed", "done"]
    assert [s.name for s in ALTERNATIVES.successors("approval")] == ["edi", "published"]
    assert [s.name for s in ALTERNATIVES.successors("viewed")] == ["done"]
    assert [s.name for s in ALTERNATIVES.successors("edi")] == ["done"]
    assert [s.name for s in CAPITAL.frontier("approval", lambda s: s.when is None)] == ["done"]
    assert [s.name for s in CAPITAL.frontier("approval")] == ["committee"]


def test_a_producer_step_is_a_message_sent_and_its_queue_is_blamed_once_overdue() -> None:
    wf = flow(step("dispatched", "10m"), step("done", "30m"))
    sent = ev("dispatched", 10, span_kind="Producer", destination="erp.po.out")
    stuck = QueueInfo("kafka/erp.po.out/wms", "stopped", 23917, None)
    c = ctx(50, "normal", queues={"erp.po.out": stuck})
    v = evaluate(wf, [ev("start", 0), sent], c)
    assert (v.state, v.cause and v.cause.kind, v.cause and v.cause.component) == (
        "blocked",
        "queue_backlog",
        "kafka/erp.po.out/wms",
    )
    assert v.cause is not None and v.cause.evidence["backlog"] == 23917
    assert v.cause.evidence["queue_status"] == "stopped"
    # Within its SLA a transaction in a stopped topic is in progress.
    assert evaluate(wf, [ev("start", 0), sent], ctx(30, "normal", queues={"erp.po.out": stuck})).state == "in_progress"
    # Taken by its consumer (no message id: by destination), the message no longer blames the queue.
    taken = ev("", 20, span_kind="Consumer", destination="erp.po.out")
    assert evaluate(wf, [ev("start", 0), sent, taken], c).cause.kind == "unknown"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"one_of": [{"name": "a", "match": {"service": "a"}}]}], "at least 2"),
        (
            [{"one_of": [{"name": "a", "match": {"service": "a"}}, []]}],
            "every branch of one_of needs at least one step",
        ),
        ([{"name": "a", "match": {"service": "a"}, "when": {}}], "when needs min_value, attributes or both"),
        (
            [{"name": "a", "match": {"service": "a"}}, {"one_of": [{"name": "a", "match": {"service": "b"}}, []]}],
            "every branch",
        ),
    ],
)
def test_bad_flows_name_the_problem(tmp_path: Any, steps: list[dict[str, Any]], message: str) -> None:
    import yaml

    config = tmp_path / "triage.yaml"
    config.write_text(yaml.safe_dump({"workflows": [{"name": "p2p", "keys": ["po"], "steps": steps}]}))
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    assert message in str(err.value)
    text = str(err.value)
    assert "workflows[0] (p2p).steps[" in text
    assert ".step." not in text, "the union's member name is not shown as a field"


def test_repeated_step_names_across_branches_are_refused() -> None:
    with pytest.raises(ValueError, match="step names must be unique"):
        flow({"one_of": [step("a"), step("b")]}, step("a"), step("done"))


PADDED = KeyFormat(strip_prefixes=["PO-", "PO"], strip_leading_zeros=True, pad_to=10, case="upper")


def test_key_format_folds_every_spelling() -> None:
    assert {PADDED.canonical(k) for k in ("0004500012", "4500012", "PO-0004500012", "po4500012", " 4500012 ")} == {
        "0004500012"
    }
    plain = KeyFormat()
    assert plain.canonical(" INV-1 ") == "INV-1"
    assert plain.split_keys('["A-1", "A-2", "A-1"]') == ["A-1", "A-2"]
    assert plain.split_keys("A-1, A-2;A-3  A-4") == ["A-1", "A-2", "A-3", "A-4"]
    assert KeyFormat(split="").split_keys("ACME CORP") == ["ACME CORP"]
    assert PADDED.split_keys("[4500012, 4500013]") == ["0004500012", "0004500013"]


_KEYISH = st.text(alphabet="0PpOo-19aZ ,;[]\"'\t", max_size=24)
_FORMATS = st.builds(
    KeyFormat,
    strip_prefixes=st.lists(st.sampled_from(["PO-", "PO", "po", "0", "-"]), max_size=2),
    strip_leading_zeros=st.booleans(),
    pad_to=st.one_of(st.none(), st.integers(1, 12)),
    case=st.sampled_from(["keep", "upper", "lower"]),
    split=st.sampled_from([r"[,;\s]+", "", ";"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=_FORMATS, values=st.lists(_KEYISH, min_size=1, max_size=5))
def test_sql_and_python_agree_on_canonical_keys(store: Store, fmt: KeyFormat, values: list[str]) -> None:
    workflow = Workflow.model_validate(
        {
            "name": "w",
            "keys": ["k"],
            "key_format": fmt.model_dump(),
            "steps": [{"name": "s", "match": {"kind": "server"}}],
        }
    )
    params = Params()
    expr = span_keys_expr(workflow, params, "attrs")
    rows = store.query(
        f"SELECT v, {expr} FROM (SELECT arrayJoin({{vs:Array(String)}}) AS v, map('k', v) AS attrs)",
        {**params.values, "vs": values},
    ).result_rows
    for value, keys in rows:
        assert sorted(keys) == sorted(fmt.split_keys(value)), (value, fmt)
    direct = Params()
    (only,) = store.query(
        f"SELECT {canonical_keys_expr(fmt, direct, '[{v:String}]')}", {**direct.values, "v": values[0]}
    ).result_rows[0]
    assert only == ([fmt.canonical(values[0])] if fmt.canonical(values[0]) else [])


def test_an_error_inside_a_branch_names_the_branch_and_the_step(tmp_path: Any) -> None:
    import yaml

    branch = [{"name": "c", "match": {"service": "c"}, "sla": {"normal": "2hours"}}]
    steps = [{"name": "a", "match": {"service": "a"}}, {"one_of": [{"name": "b", "match": {"service": "b"}}, branch]}]
    config = tmp_path / "triage.yaml"
    config.write_text(yaml.safe_dump({"workflows": [{"name": "p2p", "keys": ["po"], "steps": steps}]}))
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    assert "workflows[0] (p2p).steps[1].one_of[1][0] (c).sla.normal: invalid duration '2hours'" in str(err.value)


def test_queue_states_are_found_by_the_destination_spans_name(store: Store) -> None:
    """An exporter's queue (`<entry>/<topic>/<group>`) and a pushed one are found by the topic or queue
    spans carry; of two groups reading one topic, the one that tells of a wait counts."""
    from collector.queues import QueueSample, write_samples
    from correlator.queues import queue_infos
    from triage.settings import Settings

    settings = Settings.model_validate(
        {"store": store.dsn, "queues": [{"name": "kafka", "kind": "prometheus", "url": "http://127.0.0.1:9308/m"}]}
    )
    now = datetime.now(UTC)
    samples = [
        QueueSample(queue="kafka/erp.po.out/audit", system="kafka", time=now, backlog=0, consumers=2,
                    source="kafka", destination="erp.po.out", consumer_group="audit"),
        QueueSample(queue="kafka/erp.po.out/wms", system="kafka", time=now, backlog=5120, consumers=0,
                    source="kafka", destination="erp.po.out", consumer_group="wms"),
        QueueSample(queue="ibmmq.po.inbound", system="ibmmq", time=now, backlog=40, consumers=1,
                    source="push", destination="PO.INBOUND"),
    ]  # fmt: skip
    write_samples(store, samples)
    infos = queue_infos(store, settings)
    assert infos["erp.po.out"].name == "kafka/erp.po.out/wms" and infos["erp.po.out"].backlog == 5120
    assert infos["PO.INBOUND"].name == "ibmmq.po.inbound"
