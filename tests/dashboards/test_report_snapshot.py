"""The report's snapshot (migration 0020) gives the numbers the raw queries give over the same periods, on
a store filled as bench/dashboards.py fills a large one (a tenth of the transactions re-versioned, causes
left behind by transactions that recovered), for every report period and the period before it; and the
report falls back to the raw tables wherever the snapshot cannot answer exactly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from bench.dashboards import bench_settings, generate
from dashboards.queries import report as q
from dashboards.queries import snapshots
from dashboards.report.model import PERIODS, build_report
from triage import targets
from triage.durations import parse_duration
from triage.store import Store

CONFIG = bench_settings("chdb:///unused")


@pytest.fixture
def filled(store: Store) -> Store:
    generate(store, 3000, 0, say=lambda _: None)
    targets.record(store, CONFIG)
    # Completions exactly on their target (within it) and a nanosecond past it, in the last day.
    store.command(
        "INSERT INTO business_transactions SELECT * REPLACE (now64(9) - toIntervalHour(7) AS StartedAt, "
        "now64(9) - toIntervalHour(7) + toIntervalSecond({target:UInt32}) + toIntervalNanosecond(toUInt64(Key) % 2) "
        "AS UpdatedAt, "
        "Version + 1 AS Version) FROM business_transactions FINAL "
        "WHERE Workflow = 'procure_to_pay' AND Criticality = 'critical' AND State = 'completed' ORDER BY Key LIMIT 4",
        {"target": int(targets.end_to_end(CONFIG)["procure_to_pay|critical"])},
    )
    return store


def _refreshed(store: Store) -> q.Snapshot:
    store.command(f"SYSTEM REFRESH VIEW {q.SNAPSHOT_VIEW}")
    store.command(f"SYSTEM WAIT VIEW {q.SNAPSHOT_VIEW}")
    snap = q.snapshot(store)
    assert snap is not None
    return snap


def _rounded(split: q.Breakdowns) -> tuple[list[tuple[object, ...]], ...]:
    """The breakdowns with their sums of values to the cent (summed in another order, they differ in the
    last bits)."""

    def row(x: object) -> tuple[object, ...]:
        return tuple(round(v, 2) if isinstance(v, float) else v for v in vars(x).values())

    return tuple(sorted(row(x) for x in part) for part in (split.workflows, split.facilities, split.days))


def test_the_snapshot_gives_the_raw_figures_of_every_period(filled: Store) -> None:
    snap = _refreshed(filled)
    goal = targets.end_to_end(CONFIG)
    end = snap.at
    for period in PERIODS:
        length = timedelta(seconds=parse_duration(period))
        for start, stop in ((end - length, end), (end - 2 * length, end - length)):
            assert snap.ages(start, stop) is not None
            raw, fast = q.breakdowns(filled, start, stop), q.breakdowns(filled, start, stop, snap=snap)
            if stop == end:
                assert sum(w.started for w in raw.workflows) > 0, period
            assert _rounded(fast) == _rounded(raw), (period, start)
            assert q.cause_stalls(filled, start, stop, snap=snap) == q.cause_stalls(filled, start, stop), period
            assert q.worst_offenders(filled, start, stop, snap=snap) == q.worst_offenders(filled, start, stop)
        start = end - length
        assert snap.window(start, end) == length.total_seconds()
        cycle = q.cycle_times(filled, start, end, goal, snap=snap)
        assert cycle and cycle == q.cycle_times(filled, start, end, goal), period
        assert any(c.within_target < c.completed for c in cycle), "some completions miss their target"


def test_the_whole_report_reads_the_snapshot_and_says_the_same(filled: Store) -> None:
    _refreshed(filled)
    fast = build_report(filled, CONFIG, "7d", charts=False)
    (at,) = filled.query("SELECT min(RefreshedAt) FROM transaction_report").result_rows[0]
    assert fast.end == at, "without `now`, the report ends at the snapshot's refresh"
    raw = build_report(filled, CONFIG, "7d", fast.end, charts=False)
    assert fast.headline is not None and raw.headline is not None
    assert fast.headline.stalled > 0 and fast.headline.leading_cause is not None
    assert fast.headline.started == raw.headline.started and fast.headline.stalled == raw.headline.stalled
    assert fast.headline.within_target == raw.headline.within_target
    assert fast.summary == raw.summary
    assert [t.rows for t in fast.tables] == [t.rows for t in raw.tables]


def test_cycle_times_judged_by_other_targets_come_from_the_raw_table(filled: Store) -> None:
    """The snapshot counts completions within the targets `triage serve` recorded; a report made with
    another configuration's targets must count by its own."""
    snap = _refreshed(filled)
    start = snap.at - timedelta(days=7)
    other = {k: v / 2 for k, v in targets.end_to_end(CONFIG).items()}
    cycle = q.cycle_times(filled, start, snap.at, other, snap=snap)
    assert cycle == q.cycle_times(filled, start, snap.at, other)
    assert all(c.target_seconds == other[f"{c.workflow}|{c.criticality}"] for c in cycle)


def test_periods_the_snapshot_does_not_hold_are_read_raw() -> None:
    at = datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=UTC)
    snap = q.Snapshot(at)
    assert snap.ages(at - timedelta(hours=24), at) == {"lo": 1, "hi": 24}
    assert snap.ages(at - timedelta(hours=48), at - timedelta(hours=24)) == {"lo": 25, "hi": 48}
    assert snap.ages(at - timedelta(minutes=90), at) is None, "not whole hours"
    assert snap.ages(at - timedelta(hours=2), at - timedelta(minutes=30)) is None, "not ending whole hours back"
    assert snap.ages(at, at + timedelta(hours=1)) is None, "after the refresh"
    assert snap.window(at - timedelta(days=7), at) == 604_800
    assert snap.window(at - timedelta(days=3), at) is None, "not a report period"
    assert snap.window(at - timedelta(days=14), at - timedelta(days=7)) is None, "not ending at the refresh"


def test_a_transaction_is_filed_under_the_hours_since_it_started_rounded_up(store: Store) -> None:
    """The migration's Age, evaluated with the refresh time as a parameter: started exactly P hours before
    the refresh it is in the period of P hours (StartedAt >= end - P), a microsecond earlier it is not."""
    sql = resources.files("triage.store").joinpath("migrations/0020_report_snapshot.sql").read_text("utf-8")
    found = re.search(
        r"(toUnixTimestamp64Nano\(now64\(9\)\) - toUnixTimestamp64Nano\(StartedAt\)) AS age_ns,\s*"
        r"(toUInt32\(.*?\)) AS Age,",
        sql,
        re.S,
    )
    assert found is not None
    age_ns = found[1].replace("now64(9)", "{at:DateTime64(9)}")
    age = found[2].replace("age_ns", f"({age_ns})")
    at = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)
    hour, ns = timedelta(hours=1), timedelta(microseconds=1)  # the finest a datetime holds
    cases = {
        at: 0,
        at + ns: 0,
        at - ns: 1,
        at - hour: 1,
        at - hour - ns: 2,
        at - 24 * hour: 24,
        at - 24 * hour - ns: 25,
    }
    for started, expected in cases.items():
        got = store.query(
            f"SELECT {age} FROM (SELECT {{started:DateTime64(9)}} AS StartedAt)", {"at": at, "started": started}
        )
        assert got.result_rows[0][0] == expected, (at - started, expected)


def test_the_migration_holds_the_report_periods() -> None:
    sql = resources.files("triage.store").joinpath("migrations/0020_report_snapshot.sql").read_text("utf-8")
    windows = re.search(r"arrayFilter\(w -> .*?\[([\d, ]+)\]\)", sql, re.S)
    assert windows is not None
    assert [int(w) for w in windows[1].split(", ")] == [parse_duration(p) for p in PERIODS] == list(q.CYCLE_WINDOWS)
    assert f"toIntervalSecond({max(q.CYCLE_WINDOWS)})" in sql


def test_a_write_shows_in_the_next_report(filled: Store) -> None:
    """A small store refreshes the snapshot on read when the store changed since."""
    snap = _refreshed(filled)
    before = build_report(filled, CONFIG, "24h", charts=False)
    ((key,),) = filled.query(
        "SELECT Key FROM business_transactions FINAL WHERE State = 'completed' ORDER BY Key LIMIT 1"
    ).result_rows
    filled.command(
        "INSERT INTO business_transactions SELECT * REPLACE (now64(9) - 60 AS StartedAt, now64(9) AS UpdatedAt, "
        "'blocked' AS State, 'queue_backlog' AS CauseKind, 'wf.new' AS CauseComponent, 1e9 AS Priority, "
        "Version + 1 AS Version) FROM business_transactions FINAL WHERE Key = {key:String}",
        {"key": key},
    )
    after = build_report(filled, CONFIG, "24h", charts=False)
    assert after.end > snap.at
    assert before.headline is not None and after.headline is not None
    assert after.headline.stuck_now == before.headline.stuck_now + 1
    assert key in after.summary[-1], "the new worst open case"


def test_a_snapshot_left_stale_is_refreshed_however_long_that_takes(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store closed for a while (its refresh timer did not run): the report must not end back then."""
    snap = _refreshed(filled)
    monkeypatch.setattr(snapshots, "CHEAP_REFRESH_MS", -1)  # as on a large store: no refresh on read
    assert q.snapshot(filled) == snap
    monkeypatch.setattr(q, "STALE", timedelta(0))
    later = q.snapshot(filled)
    assert later is not None and later.at > snap.at


def test_an_empty_store_reports_nothing(store: Store) -> None:
    assert q.snapshot(store) is None
    report = build_report(store, CONFIG, "7d", charts=False)
    assert report.empty
