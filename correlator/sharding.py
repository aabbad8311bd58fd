"""Correlator workers sharded by transaction: each owns one shard, and takes over any whose worker stops.

A transaction belongs to shard `cityHash64(Workflow, Key) % n` (1-based: shard i owns remainder i-1),
the same hash the cluster schema shards business tables by. Each shard has a lease (`correlator/i/n`,
triage/leases.py) and a watermark of its own. A worker started with `--shard i/n` claims shard i; after
one lease period (so that every worker had the chance to claim its own) it also claims any shard whose
lease is free — never claimed, released, or lapsed because its worker stopped renewing — and correlates
it from that shard's persisted watermark. A worker that finds its own shard held by another asks for it
back and gets it at the borrower's next cycle. A cycle writes verdicts only while its worker still holds
the shard's lease, so no transaction is judged by two workers at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from correlator import metrics
from correlator.engine import Correlator, CycleResult, LeaseLost
from correlator.forecast import Forecaster
from triage.health import TaskHealth
from triage.leases import holder_name, store_lease
from triage.settings import Settings, Shard
from triage.store import Store

log = logging.getLogger("triage.correlator")


def lease_name(shard: Shard) -> str:
    return f"correlator/{shard.index}/{shard.count}"


class ShardWorker:
    """One process's correlation: its home shard first, then every other shard it holds or may take."""

    def __init__(self, store: Store, settings: Settings, *, holder: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.home = settings.shard
        self.holder = holder or holder_name(f"correlator-{self.home.index}of{self.home.count}")
        conf = settings.correlation
        self.ttl = conf.lease_ttl
        count = self.home.count
        self.shards = [Shard(index=i, count=count) for i in range(1, count + 1)]
        # Home first: a worker correlates its own shard before any it looks after for another.
        self.shards.sort(key=lambda s: s != self.home)
        self.leases = {s.index: store_lease(store, lease_name(s), self.holder, self.ttl) for s in self.shards}
        # Read once per refresh for every shard this worker runs, beside its cycles once the first read landed.
        self.forecaster = Forecaster(store, settings, background=True)
        self.correlators: dict[int, Correlator] = {self.home.index: self._correlator(self.home)}
        self._started = time.monotonic()
        self._resting: dict[int, float] = {}  # shards handed back: not claimed again before this time
        self.health = TaskHealth("correlator")

    def close(self) -> None:
        """Stop what runs beside the cycles (the forecaster's history reads), so the store can close."""
        self.forecaster.close()

    def _correlator(self, shard: Shard) -> Correlator:
        return Correlator(self.store, self.settings, shard, forecaster=self.forecaster)

    @property
    def correlator(self) -> Correlator:
        """The home shard's correlator (replays and tests use it directly)."""
        return self.correlators[self.home.index]

    def held(self) -> list[Shard]:
        """The shards this worker holds now."""
        return [s for s in self.shards if self.leases[s.index].held()]

    def _may_claim(self, shard: Shard) -> bool:
        if shard == self.home:
            return True
        if time.monotonic() - self._started < self.ttl:  # give each shard's own worker its turn first
            return False
        return time.monotonic() >= self._resting.get(shard.index, 0.0)

    def run_once(self) -> list[CycleResult]:
        """One cycle of every shard this worker holds or can take now; a failing shard never stops the others."""
        results: list[CycleResult] = []
        failure: Exception | None = None
        for shard in self.shards:
            lease = self.leases[shard.index]
            try:
                if not lease.keep(claim_free=self._may_claim(shard)):
                    if shard == self.home:
                        lease.ask_back()
                    continue
                correlator = self.correlators.get(shard.index)
                if correlator is None:
                    log.warning("event=shard_taken_over shard=%s holder=%s", shard, self.holder)
                    correlator = self.correlators[shard.index] = self._correlator(shard)
                results.append(correlator.run_once(may_write=lease.held))
                if shard != self.home and lease.wanted_back:
                    lease.release()
                    self._resting[shard.index] = time.monotonic() + self.ttl
                    log.info("event=shard_handed_back shard=%s", shard)
            except LeaseLost as exc:
                log.warning("event=shard_cycle_abandoned shard=%s reason=%r", shard, str(exc))
            except Exception as exc:
                metrics.ERRORS.inc()
                failure = exc
                log.exception("event=correlation_cycle_failed shard=%s", shard)
        if failure is None:
            self.health.succeeded()
        else:
            self.health.failed(failure)
        return results

    def release(self) -> None:
        """Give up every shard held (a clean stop): others take them over at once, not after a lease period."""
        for lease in self.leases.values():
            try:
                lease.release()
            except Exception as exc:  # stopping anyway: the lease lapses on its own
                log.warning("event=lease_release_failed lease=%s error=%r", lease.name, exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every `correlation.interval` until `stop` is set; then release the shards held."""
        conf = self.settings.correlation
        try:
            while not stop.is_set():
                began = time.monotonic()
                results = await asyncio.to_thread(self.run_once)
                wait = conf.interval
                if any(r.held for r in results):  # held work is judged as soon as the next rows have settled
                    wait = min(conf.interval, max(conf.settle, 0.5) + 0.5)
                for r in results:
                    if r.events or r.evaluated:
                        log.info(
                            "event=correlation_cycle traces=%d events=%d evaluated=%d seconds=%.2f",
                            r.touched_traces,
                            r.events,
                            r.evaluated,
                            r.seconds,
                        )
                try:
                    # Cycles start every `interval`; a cycle that took longer is followed at once.
                    await asyncio.wait_for(stop.wait(), timeout=max(0.05, wait - (time.monotonic() - began)))
                except TimeoutError:
                    pass
        finally:
            await asyncio.to_thread(self.release)
