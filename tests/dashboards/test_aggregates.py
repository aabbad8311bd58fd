"""The pre-aggregated tables of migration 0017 give the pages the numbers the raw tables give: on a small
store filled as bench/dashboards.py fills a large one (a tenth of the transactions re-versioned), after
a transaction's state changes, and with the time ranges and buckets the dashboards use."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

import correlator as readmodel
from bench.dashboards import generate
from dashboards.filters import RANGES, Filters, bucket_seconds
from dashboards.queries import overview, snapshots, telemetry, workflow
from triage.store import Store
from triage.vocabulary import STUCK, State, names

# The queries the pages ran on the raw tables before 0017: the reference.
RAW_TRANSITIONS = """
SELECT p.1 AS from_step, p.2 AS to_step, count() AS n, quantiles(0.5, 0.95)(p.3) AS q
FROM (
    SELECT arraySort(x -> x.2, groupArray((Step, t))) AS seq
    FROM (
        SELECT Key, Step, min(At) AS t FROM business_events
        WHERE Workflow = {workflow:String} AND Step != '' AND Status = 'ok' AND Failure = 0
          AND At >= {since:DateTime64(9)}
        GROUP BY Key, Step
    )
    GROUP BY Key
)
ARRAY JOIN arrayMap((a, b) -> (a.1, b.1, toFloat64(dateDiff('millisecond', a.2, b.2)) / 1000),
                    arrayPopBack(seq), arrayPopFront(seq)) AS p
GROUP BY from_step, to_step
ORDER BY n DESC, from_step, to_step
"""
_RAW_FILTERS = """Workflow = {workflow:String}
  AND ({facility:String} = '' OR Facility = {facility:String})
  AND ({criticality:String} = '' OR Criticality = {criticality:String})"""
RAW_STEP_STATES = f"""
SELECT CurrentStep, NextStep, State, count() AS n, sum(Value) AS value
FROM business_transactions FINAL
WHERE {_RAW_FILTERS} AND (StartedAt >= {{since:DateTime64(9)}} OR has({{stuck_states:Array(String)}}, State))
GROUP BY CurrentStep, NextStep, State
"""
RAW_CYCLE_TIMES = f"""
SELECT count() AS n, quantiles(0.5, 0.9, 0.95)(seconds) AS q
FROM (
    SELECT dateDiff('nanosecond', StartedAt, UpdatedAt) / 1e9 AS seconds
    FROM business_transactions FINAL
    WHERE {_RAW_FILTERS} AND State = 'completed' AND UpdatedAt >= {{since:DateTime64(9)}}
)
"""
RAW_THROUGHPUT = f"""
SELECT t, sum(started), sum(completed), sum(stuck)
FROM (
    SELECT toStartOfInterval(StartedAt, toIntervalSecond({{bucket:UInt32}})) AS t, 1 AS started, 0 AS completed,
           State IN {{stuck_states:Array(String)}} AS stuck
    FROM business_transactions FINAL WHERE {_RAW_FILTERS} AND StartedAt >= {{since:DateTime64(9)}}
    UNION ALL
    SELECT toStartOfInterval(UpdatedAt, toIntervalSecond({{bucket:UInt32}})), 0, 1, 0
    FROM business_transactions FINAL
    WHERE {_RAW_FILTERS} AND State = 'completed' AND UpdatedAt >= {{since:DateTime64(9)}}
)
GROUP BY t ORDER BY t
"""
RAW_HURT = """
SELECT CauseComponent, CauseKind, Workflow, count(), sum(Value), countIf(Criticality = 'critical')
FROM business_transactions FINAL
WHERE State IN {stuck:Array(String)} AND CauseComponent != ''
GROUP BY CauseComponent, CauseKind, Workflow ORDER BY count() DESC, CauseComponent, CauseKind, Workflow
"""
RAW_SERVICES = """
SELECT ServiceName, toStartOfInterval(Timestamp, toIntervalSecond({bucket:UInt32})) AS t, count(),
       countIf(StatusCode = 'Error')
FROM otel_traces
WHERE Timestamp >= toStartOfMinute({since:DateTime64(9)}) AND SpanKind IN ('Server', 'Client', 'Consumer')
GROUP BY ServiceName, t ORDER BY ServiceName, t
"""
RAW_PEERS = """
SELECT SpanAttributes['peer.service'] AS peer, count(), countIf(StatusCode = 'Error'),
       argMaxIf(StatusMessage, Timestamp, StatusCode = 'Error')
FROM otel_traces
WHERE Timestamp >= toStartOfMinute({since:DateTime64(9)}) AND SpanKind = 'Client'
GROUP BY peer HAVING peer != '' ORDER BY peer
"""
VIEWS = tuple(snapshots.VIEWS)


@pytest.fixture
def filled(store: Store) -> Store:
    generate(store, 2000, 20_000, say=lambda _: None)
    return store


def _refreshed(store: Store) -> datetime:
    for view in VIEWS:
        store.command(f"SYSTEM REFRESH VIEW {view}")
        store.command(f"SYSTEM WAIT VIEW {view}")
    at = store.query("SELECT min(RefreshedAt) FROM transaction_rollup").result_rows[0][0]
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _filters() -> list[Filters]:
    out = [Filters(range=r) for r in RANGES]
    out += [Filters(range="30d", workflow="procure_to_pay", criticality="critical"), Filters(facility="FAC-03")]
    return out + [Filters(range="7d", state="blocked"), Filters(cause="queue_backlog", range="30d")]


def _same_overview(store: Store, now: datetime) -> None:
    for f in _filters():
        where = f.transactions(now)
        assert overview.state_counts(store, where, f.seconds) == readmodel.state_counts(store, where), f
        assert overview.cause_groups(store, where, limit=10) == readmodel.cause_groups(store, where, limit=10), f
        stuck = replace(where, states=tuple(s for s in where.states or STUCK if s in STUCK))
        if stuck.states:
            assert overview.attention(store, stuck) == readmodel.list_transactions(store, stuck, limit=25), f
        risky = replace(where, states=(State.IN_PROGRESS,), at_risk=True)
        assert overview.attention(store, risky) == readmodel.list_transactions(store, risky, limit=25), f
    raw_hurt = store.query(RAW_HURT, {"stuck": names(STUCK)}).result_rows
    assert sorted(overview.hurt_rows(store)) == sorted((r[0], r[1], r[2], r[3], r[4], r[5]) for r in raw_hurt)
    assert overview.filter_options(store) == readmodel.filter_options(store)


def _same_workflow_pages(store: Store, now: datetime) -> None:
    for wf in ("procure_to_pay", "workforce_sync"):
        for r in RANGES:
            f = Filters(range=r, workflow=wf)
            params: dict[str, Any] = {**f.sql(now), "stuck_states": names(STUCK), "bucket": bucket_seconds(f.seconds)}
            raw = store.query(RAW_TRANSITIONS, params).result_rows
            got = workflow.transitions(store, wf, f.seconds)
            assert [(t.from_step, t.to_step, t.count) for t in got] == [(x[0], x[1], x[2]) for x in raw], f
            assert [v for t in got for v in (t.p50_seconds, t.p95_seconds)] == pytest.approx(
                [v for x in raw for v in x[3]]
            )
            raw_steps = store.query(RAW_STEP_STATES, params).result_rows
            assert sorted((s.current_step, s.next_step, s.state, s.count) for s in workflow.step_states(store, f)) == (
                sorted((x[0], x[1], x[2], x[3]) for x in raw_steps)
            ), f
            n, q = store.query(RAW_CYCLE_TIMES, params).first_row
            cycle = workflow.cycle_times(store, f)
            assert cycle.count == n and [cycle.p50, cycle.p90, cycle.p95] == pytest.approx(list(q) if n else [0.0] * 3)
            if n:
                assert sum(h for _, _, h in cycle.bins) == pytest.approx(n)
            flow = workflow.throughput(store, f)
            raw_flow = store.query(RAW_THROUGHPUT, params).result_rows
            assert list(zip(flow.times, flow.started, flow.completed, flow.stuck, strict=True)) == raw_flow, f


def test_the_ranges_and_buckets_of_the_migration_are_the_dashboards() -> None:
    sql = resources.files("triage.store").joinpath("migrations/0017_dashboard_aggregates.sql").read_text("utf-8")
    pairs = re.search(r"ARRAY JOIN \[(\(\d+, \d+\)(?:, \(\d+, \d+\))*)\] AS w", sql)
    assert pairs is not None
    assert [tuple(map(int, p)) for p in re.findall(r"\((\d+), (\d+)\)", pairs[1])] == [
        (s, bucket_seconds(s)) for s in RANGES.values()
    ]
    windows = ", ".join(str(s) for s in RANGES.values())
    assert sql.count(f"[{windows}, 4294967295]") == 1 and sql.count(f"[{windows}]") == 1


def test_pre_aggregated_pages_give_the_raw_numbers(filled: Store) -> None:
    now = _refreshed(filled)
    _same_overview(filled, now)
    _same_workflow_pages(filled, now)
    since = Filters().since(now)
    health = {h.name: h for h in telemetry.service_health(filled, since, 86400)}
    series: dict[str, tuple[int, int]] = {}
    for name, _, calls, errors in filled.query(RAW_SERVICES, {"since": since, "bucket": 1800}).result_rows:
        c, e = series.get(name, (0, 0))
        series[name] = (c + calls, e + errors)
    assert {n: (h.calls, h.errors) for n, h in health.items() if h.calls} == series
    peer_since = max(since, datetime.now(UTC) - timedelta(seconds=telemetry.PEER_WINDOW))
    peers = filled.query(RAW_PEERS, {"since": peer_since}).result_rows
    assert peers and all(
        (health[p].caller_calls, health[p].caller_errors, health[p].caller_last_error) == (c, e, m)
        for p, c, e, m in peers
    )


def test_a_state_change_shows_on_the_next_read(filled: Store) -> None:
    """A small store refreshes its snapshots on read when the store changed: no stale page after a write."""
    _refreshed(filled)
    where = Filters(range="30d").transactions()
    (before,) = overview.attention(filled, replace(where, states=(State.BLOCKED,)), limit=1)
    filled.command(
        "INSERT INTO business_transactions SELECT * REPLACE ('completed' AS State, '' AS CauseKind, "
        "'' AS CauseComponent, '' AS CauseDetail, NULL AS CauseSince, Version + 1 AS Version) "
        "FROM business_transactions FINAL WHERE Workflow = {w:String} AND Key = {k:String}",
        {"w": before.workflow, "k": before.key},
    )
    now = datetime.now(UTC)
    after = overview.attention(filled, replace(where, states=(State.BLOCKED,)), limit=100_000)
    assert (before.workflow, before.key) not in {(t.workflow, t.key) for t in after}
    _same_overview(filled, now)


def test_spans_stored_before_the_migration_are_backfilled(filled: Store) -> None:
    minutes = filled.query("SELECT sum(Calls) FROM otel_traces_service_minutes").result_rows[0][0]
    raw = "SELECT count() FROM otel_traces WHERE SpanKind IN ('Server', 'Client', 'Consumer')"
    filled.command("TRUNCATE TABLE otel_traces_service_minutes")
    backfill = [
        s
        for s in resources.files("triage.store")
        .joinpath("migrations/0017_dashboard_aggregates.sql")
        .read_text("utf-8")
        .split(";\n")
        if "INSERT INTO otel_traces_service_minutes" in s
    ]
    (statement,) = backfill
    filled.command(statement)
    filled.command(statement)  # a retried migration adds nothing twice
    again = filled.query("SELECT sum(Calls) FROM otel_traces_service_minutes").result_rows[0][0]
    assert minutes == again == int(filled.command(raw))
