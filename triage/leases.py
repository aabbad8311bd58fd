"""Leases in the store: which process holds a correlator shard, the alert evaluator or the queue pollers.

ClickHouse has no compare-and-set, so a lease is an append-only log (table `triage_leases`, migration
0015) read with one rule: **the first claim of the newest term wins**. A term lasts while its winner
renews before `Expires`; once it lapses (or its holder releases it) anyone may claim the next term.
Two processes that claim the same term both read the claims back after `settle` seconds and agree on
the winner (earliest `At`, the server's clock, then the holder's name), so a later claim never displaces
an earlier one. Every time is the server's (`now64`), so workers' clocks need not agree.

A holder believes its lease only until its own deadline: the renewal's duration counted from before
the renewal was sent, less `margin`, on its monotonic clock. Work that must not be done twice (judging
a shard's transactions) checks `held()` before writing. A process that dies stops renewing and its
lease lapses after at most `ttl`; one that finds its *home* lease held by another asks for it back
(`want`), and the borrower releases it at its next renewal.

With a cluster, lease rows are written with `insert_quorum` and read with `select_sequential_consistency`
so that every replica agrees on them (reviewed, not run here: no ClickHouse server on this machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from triage.store import Store

log = logging.getLogger("triage.leases")

TABLE = "triage_leases"
CLAIM, RENEW, RELEASE, WANT = "claim", "renew", "release", "want"
_COLUMNS = ["Name", "Term", "Holder", "Kind", "Expires"]
_STATE = f"""
SELECT Holder, countIf(Kind = 'claim') AS claims, minIf(At, Kind = 'claim') AS claimed,
       maxIf(Expires, Kind IN ('claim', 'renew')) AS expires, countIf(Kind = 'release') AS released,
       countIf(Kind = 'want') AS wants, any(Term) AS term, now64(3) AS now
FROM {TABLE}
WHERE Name = {{name:String}} AND Term = (SELECT max(Term) FROM {TABLE} WHERE Name = {{name:String}})
GROUP BY Holder
"""
_NOW = "SELECT now64(3)"


def holder_name(role: str = "") -> str:
    """A name for this process's holder, unique across hosts and restarts: `host:pid:role:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{role or 'triage'}:{uuid.uuid4().hex[:8]}"


def embedded_holder_gone(holder: str) -> bool:
    """On the embedded store only one process can open the data: a holder of another process is gone."""
    host, _, rest = holder.partition(":")
    return host == socket.gethostname() and rest.partition(":")[0] != str(os.getpid())


@dataclass(frozen=True)
class LeaseState:
    """A lease as its rows say, at the server's time `now`."""

    name: str
    term: int
    holder: str | None  # the winner of the newest term; None when nobody ever claimed it
    expires: datetime | None
    released: bool
    wanted: bool  # someone asked the holder for it back during this term
    now: datetime

    @property
    def free(self) -> bool:
        """Nobody holds it: never claimed, released, or lapsed."""
        return self.holder is None or self.released or self.expires is None or self.expires <= self.now


class Lease:
    """One named lease, seen from one holder. Thread-safe: a worker's cycle and its probes may share it."""

    def __init__(
        self,
        store: Store,
        name: str,
        holder: str,
        *,
        ttl: float = 30.0,
        settle: float | None = None,
        margin: float | None = None,
        gone: Callable[[str], bool] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lease's ttl must be positive")
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        # A claim is believed once every competing claim of its term has had time to become visible.
        self.settle = min(1.0, ttl / 10) if settle is None else settle
        # Work checked against the deadline must finish within the margin (a write, not a cycle).
        self.margin = ttl / 4 if margin is None else margin
        self._deadline = 0.0  # monotonic: until when this holder may believe it holds the lease
        self._term = 0
        self._lock = threading.Lock()
        self.wanted_back = False  # at the last renewal, someone had asked this holder for the lease
        # Which other holders are known dead without waiting for their lease to lapse (embedded store).
        self._gone = gone

    # -- reading ------------------------------------------------------------------------------------

    def _settings(self, *, write: bool) -> dict[str, object] | None:
        if not self.store.cluster:
            return None
        return {"insert_quorum": "auto"} if write else {"select_sequential_consistency": 1}

    def state(self) -> LeaseState:
        """The lease as the store has it now."""
        rows = self.store.client.query(
            _STATE, parameters={"name": self.name}, settings=self._settings(write=False)
        ).result_rows
        if not rows:
            now = self.store.client.query(_NOW).result_rows[0][0]
            return LeaseState(self.name, 0, None, None, False, False, now)
        claimers = sorted((claimed, holder) for holder, claims, claimed, *_ in rows if claims)
        term, now = int(rows[0][6]), rows[0][7]
        wanted = any(wants for _, _, _, _, _, wants, _, _ in rows)
        if not claimers:  # only hand-back requests in this term: nobody won it
            return LeaseState(self.name, term, None, None, False, wanted, now)
        winner = claimers[0][1]
        mine = next(r for r in rows if r[0] == winner)
        released = bool(mine[4]) or (winner != self.holder and self._gone is not None and self._gone(winner))
        return LeaseState(self.name, term, winner, mine[3], released, wanted, now)

    def held(self) -> bool:
        """Whether this holder may still act on the lease (its own conservative deadline)."""
        return time.monotonic() < self._deadline

    @property
    def remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    # -- writing ------------------------------------------------------------------------------------

    def _write(self, term: int, kind: str, expires: datetime) -> None:
        self.store.insert(
            TABLE, [[self.name, term, self.holder, kind, expires]], _COLUMNS, settings=self._settings(write=True)
        )

    def acquire(self, *, claim_free: bool = True) -> bool:
        """Hold the lease for another `ttl`: renew it if this holder has it and it has not lapsed, else claim
        the next term when it is free (and `claim_free`). True when this holder holds it now."""
        with self._lock:
            began = time.monotonic()
            st = self.state()
            ttl = timedelta(seconds=self.ttl)
            if st.holder == self.holder and not st.free:
                self._write(st.term, RENEW, st.now + ttl)
                self._term = st.term
                self.wanted_back = st.wanted
                self._deadline = began + self.ttl - self.margin
                return True
            self._deadline = 0.0
            if not (st.free and claim_free):
                return False
            term = st.term + 1
            self._write(term, CLAIM, st.now + ttl)
            time.sleep(self.settle)
            won = self.state()
            if won.term != term or won.holder != self.holder:
                log.info("event=lease_lost_race lease=%s term=%d winner=%s", self.name, term, won.holder)
                return False
            self._term = term
            self.wanted_back = False
            self._deadline = began + self.ttl - self.margin
            log.info("event=lease_acquired lease=%s term=%d holder=%s", self.name, term, self.holder)
            return True

    def keep(self, *, claim_free: bool = True) -> bool:
        """acquire(), without a store round trip while more than half the term is left. A holder that calls it
        every cycle (a correlator shard, four times a second under load) then renews once a quarter term
        instead (a write and a read of tens of milliseconds each time), its deadline as conservative as ever;
        what a renewal reads (wanted_back) is then up to a quarter term old."""
        if self.remaining > self.ttl / 2:
            return True
        return self.acquire(claim_free=claim_free)

    def release(self) -> None:
        """Give the lease up now (a clean stop, or a hand-back): the next claimant need not wait for it to lapse."""
        with self._lock:
            if not self.held():
                return
            self._deadline = 0.0
            now = self.store.client.query(_NOW).result_rows[0][0]
            self._write(self._term, RELEASE, now)
            log.info("event=lease_released lease=%s term=%d", self.name, self._term)

    def ask_back(self) -> None:
        """Ask whoever holds this lease to release it (a worker asking for its home shard)."""
        with self._lock:
            st = self.state()
            if st.holder in (None, self.holder) or st.free:
                return
            self._write(st.term, WANT, st.now)
            log.info("event=lease_wanted lease=%s term=%d holder=%s", self.name, st.term, st.holder)


async def while_held(
    lease: Lease, stop: asyncio.Event, body: Callable[[asyncio.Event], Coroutine[Any, Any, object]]
) -> None:
    """Run `body` only while this process holds `lease`, renewing it every third of its ttl; a standby waits
    and takes over once the lease lapses. `body` gets an event that is set when the lease is lost or at stop."""
    while not stop.is_set():
        try:
            got = await asyncio.to_thread(lease.acquire)
        except Exception as exc:  # the store being away is retried like a lost lease
            log.warning("event=lease_check_failed lease=%s error=%r", lease.name, exc)
            got = False
        if not got:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.05, lease.ttl / 3))
            continue
        inner = asyncio.Event()
        task = asyncio.create_task(body(inner))
        try:
            while not stop.is_set() and not task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.05, lease.ttl / 3))
                if stop.is_set():
                    break
                try:
                    renewed = await asyncio.to_thread(lease.acquire, claim_free=False)
                except Exception as exc:
                    log.warning("event=lease_renew_failed lease=%s error=%r", lease.name, exc)
                    renewed = lease.held()
                if not renewed:
                    log.warning("event=lease_lost lease=%s holder=%s", lease.name, lease.holder)
                    break
        finally:
            inner.set()
            await asyncio.gather(task, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.to_thread(lease.release)


def store_lease(store: Store, name: str, holder: str, ttl: float) -> Lease:
    """A lease fitted to the store: on the embedded one (one process, inserts visible at once) claims settle
    in 50 ms and a holder of a process that is gone is not waited for; on a server, the defaults."""
    if store.target.embedded:
        return Lease(store, name, holder, ttl=ttl, settle=0.05, gone=embedded_holder_gone)
    return Lease(store, name, holder, ttl=ttl)


def lease_states(store: Store) -> list[LeaseState]:
    """Every lease the store knows, by name, as a reader sees it."""
    names = [r[0] for r in store.query(f"SELECT DISTINCT Name FROM {TABLE} ORDER BY Name").result_rows]
    return [Lease(store, name, "").state() for name in names]
