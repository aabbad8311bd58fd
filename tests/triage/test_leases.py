"""Leases in the embedded store: one winner per term under contention, lapse and takeover, release, hand-back,
and `while_held` keeping a part (the alert evaluator, the queue pollers) to one process at a time."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from triage.leases import Lease, store_lease, while_held
from triage.store import Store


def test_one_claimant_wins_each_term_however_many_race(store: Store) -> None:
    for round_ in range(8):
        name = f"race/{round_}"
        leases = [Lease(store, name, f"peer:{i}:test:{i}", ttl=5, settle=0.1) for i in range(4)]
        start = threading.Barrier(len(leases))
        won: list[bool] = [False] * len(leases)

        def claim(i: int, lease: Lease, start: threading.Barrier, won: list[bool]) -> None:
            start.wait()
            won[i] = lease.acquire()

        threads = [threading.Thread(target=claim, args=(i, lease, start, won)) for i, lease in enumerate(leases)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sum(won) == 1, f"round {round_}: {won}"
        winner = leases[won.index(True)]
        assert winner.held() and winner.state().holder == winner.holder
        assert [lease.held() for lease in leases].count(True) == 1


def test_keep_renews_only_once_half_the_term_is_left(store: Store) -> None:
    a = Lease(store, "shard/keep", "peer:1:test:a", ttl=2.0, settle=0.05)

    def renewals() -> int:
        return int(store.command("SELECT count() FROM triage_leases WHERE Name = 'shard/keep'"))

    assert a.keep(), "keep() claims a free lease like acquire()"
    written = renewals()
    for _ in range(5):
        assert a.keep() and a.held()
    assert renewals() == written, "three quarters of the term left: nothing is written"
    time.sleep(0.6)  # the claim left 1.5 s (the deadline keeps a quarter-term margin): now about 0.9 s, under 1 s
    assert a.keep() and renewals() == written + 1, "less than half the term left: renewed"
    assert a.remaining > 1.0


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_knows(store: Store) -> None:
    a = Lease(store, "shard/1", "peer:1:test:a", ttl=1.5, settle=0.05)
    b = Lease(store, "shard/1", "peer:2:test:b", ttl=1.5, settle=0.05)
    assert a.acquire()
    assert not b.acquire(), "a lease held and renewed is not claimable"
    assert a.acquire(), "its holder renews it"
    assert a.remaining <= 1.5 - a.margin
    time.sleep(1.7)  # a stops renewing
    assert not a.held(), "a holder stops believing its lease before it lapses in the store"
    assert b.acquire()
    assert b.state().term == 2 and b.state().holder == b.holder
    assert not a.acquire(claim_free=False), "a renewal of a lease someone else took fails"
    assert not a.acquire(), "nor can it be claimed back while the taker renews it"


def test_release_frees_at_once_and_a_hand_back_request_reaches_the_holder(store: Store) -> None:
    a = Lease(store, "alerts", "peer:1:test:a", ttl=30, settle=0.05)
    b = Lease(store, "alerts", "peer:2:test:b", ttl=30, settle=0.05)
    assert a.acquire()
    b.ask_back()
    assert a.acquire() and a.wanted_back, "the holder learns at its next renewal that b wants it"
    a.release()
    assert not a.held()
    assert b.acquire(), "a released lease is claimable without waiting for it to lapse"
    assert not b.wanted_back


def test_on_the_embedded_store_a_holder_of_another_process_is_not_waited_for(store: Store) -> None:
    dead = Lease(store, "pollers", f"{socket.gethostname()}:{os.getpid() + 1}:pollers:x", ttl=60, settle=0.05)
    assert dead.acquire()
    mine = store_lease(store, "pollers", f"{socket.gethostname()}:{os.getpid()}:pollers:y", ttl=60)
    assert mine.acquire(), "only one process can open the embedded store: the other holder is gone"
    other_thread = store_lease(store, "pollers", f"{socket.gethostname()}:{os.getpid()}:pollers:z", ttl=60)
    assert not other_thread.acquire(), "a holder of this same process is alive"


def test_while_held_runs_one_body_at_a_time_and_a_standby_takes_over(store: Store) -> None:
    active: list[str] = []
    spans: dict[str, list[float]] = {}
    overlap: list[tuple[str, str]] = []

    def body(name: str):  # type: ignore[no-untyped-def]
        async def run(held_stop: asyncio.Event) -> None:
            if active:
                overlap.append((active[0], name))
            active.append(name)
            spans.setdefault(name, []).append(time.monotonic())
            try:
                await held_stop.wait()
            finally:
                active.remove(name)

        return run

    async def scenario() -> None:
        stop = asyncio.Event()
        first = Lease(store, "evaluator", "peer:1:alerts:first", ttl=1.2, settle=0.05)
        second = Lease(store, "evaluator", "peer:2:alerts:second", ttl=1.2, settle=0.05)
        a = asyncio.create_task(while_held(first, stop, body("first")))
        await asyncio.sleep(0.3)
        b = asyncio.create_task(while_held(second, stop, body("second")))
        await asyncio.sleep(1.5)
        assert active == ["first"], "the standby waits while the holder renews"
        died = time.monotonic()
        a.cancel()  # the holder dies: no release, its lease lapses
        await asyncio.gather(a, return_exceptions=True)
        for _ in range(50):
            if active == ["second"]:
                break
            await asyncio.sleep(0.1)
        assert active == ["second"]
        assert spans["second"][0] - died < 1.2 + 1.0, "taken over within a lease period and a renewal"
        stop.set()
        await b

    asyncio.run(scenario())
    assert not overlap, overlap
    after = Lease(store, "evaluator", "peer:3:alerts:third", ttl=1.2, settle=0.05)
    assert after.acquire(), "a clean stop releases the lease"


@pytest.mark.parametrize("bad", ["0/4", "5/4", "two/four", "1/0"])
def test_a_bad_shard_is_refused_with_how_to_write_one(bad: str) -> None:
    from triage.errors import ConfigError
    from triage.settings import load_settings

    with pytest.raises(ConfigError, match=r"e\.g\. 2/4"):
        load_settings(None, {"shard": bad}, environ={})


def test_lease_rows_keep_their_week_whatever_the_business_retention(chdb_path: object) -> None:
    from tests.conftest import unique_dsn

    s = Store(unique_dsn(chdb_path), business_ttl_days=30)  # type: ignore[arg-type]
    s.migrate()
    try:
        ttl = dict(
            s.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").result_rows
        )
        assert "toIntervalDay(7)" in ttl["triage_leases"], ttl["triage_leases"]
        assert "toIntervalDay(30)" in ttl["business_transactions"], "the business tables follow the setting"
    finally:
        s.command(f"DROP DATABASE IF EXISTS `{s.target.database}`")
