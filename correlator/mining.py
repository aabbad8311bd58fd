"""Process mining over the cases discovery read: which activities are steps, in what order, how often
each is reached, how long the wait before it is, which loop back, and which are alternatives.

Pure Python over compact cases (a transaction's activities in time order); discovery.py reads them
from the store in one query, proposal.py turns what is found here into a workflow.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

MIN_SUPPORT = 0.02  # an activity in fewer transactions than this share (or in one) is noise: a retry, an error
REQUIRED_SHARE = 0.95  # reached by this share of the transactions that got that far: required
EXCLUSIVE = 0.05  # alternatives are both in at most this share of the smaller one's transactions
TOGETHER = 0.8  # two steps of one branch are together in at least this share of the smaller one's
PLUMBING = ("Client", "Producer", "Consumer")
WORK = ("Server", "Internal")


class Activity(NamedTuple):
    """What a span does, as a step would match it: service, span name and kind (as stored: Server...).
    A tuple: discovery hashes and compares millions of them."""

    service: str
    span_name: str
    kind: str


@dataclass
class Case:
    """One transaction as discovery saw it: (seconds, activity) in time order, and its attributes."""

    key: str
    events: list[tuple[float, Activity]]
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def start(self) -> float:
        return self.events[0][0] if self.events else 0.0

    @property
    def duration(self) -> float:
        return self.events[-1][0] - self.events[0][0] if self.events else 0.0


@dataclass
class Run:
    """Consecutive events of one step in a case (a retry repeats a step without leaving it)."""

    step: Activity
    first: float
    last: float


@dataclass
class StepStats:
    activity: Activity
    reached: int = 0  # transactions
    repeated: int = 0  # transactions that came back to it after another step (a loop)
    waits: dict[int, float] = field(default_factory=dict)  # case index → seconds from the step before it
    cases: set[int] = field(default_factory=set)  # indexes of the cases that reached it
    passed: set[int] = field(default_factory=set)  # indexes of the cases that reached it or a step after it

    @property
    def eligible(self) -> int:
        return len(self.passed)

    @property
    def share(self) -> float:
        return self.reached / self.eligible if self.eligible else 1.0


@dataclass
class Transition:
    source: Activity | None  # None: the start
    target: Activity | None  # None: the end
    count: int
    seconds: list[float]


@dataclass
class Gateway:
    """Alternative branches (each a chain of steps in order) between the same predecessor and successor."""

    branches: list[list[Activity]]
    coverage: float  # share of the transactions that got that far that took one of the branches


@dataclass
class Flow:
    order: list[Activity]
    stats: dict[Activity, StepStats]
    transitions: list[Transition]
    gateways: list[Gateway]
    left_out: dict[Activity, str]  # activities that are not steps, and why


def choose_steps(cases: Sequence[Case]) -> tuple[set[Activity], dict[Activity, str]]:
    """The activities that are steps. A client, producer or consumer span is plumbing around a step of its
    own service (the requisition's publish, the connector's call to the approval SaaS) unless its service
    shows nothing else (an EDI translator that only sends, a warehouse that only consumes); an activity
    in fewer than MIN_SUPPORT of the transactions is a retry or an error path, not a step."""
    support: Counter[Activity] = Counter()
    for case in cases:
        support.update({a for _, a in case.events})
    floor = max(2, MIN_SUPPORT * len(cases))
    working = {a.service for a, n in support.items() if a.kind in WORK and n >= floor}
    steps: set[Activity] = set()
    left_out: dict[Activity, str] = {}
    for activity, n in support.items():
        if not (activity.service or activity.span_name):
            left_out[activity] = "no service or span name to match it by"
        elif n < floor:
            left_out[activity] = f"in {n} of {len(cases)} transactions only"
        elif activity.kind in PLUMBING and activity.service in working:
            left_out[activity] = f"a {activity.kind.lower()} span of {activity.service}, which has steps of its own"
        else:
            steps.add(activity)
    return steps, left_out


def runs(case: Case, steps: set[Activity]) -> list[Run]:
    """The case's steps in time order, consecutive repeats of one step folded into one run."""
    out: list[Run] = []
    for at, activity in case.events:
        if activity not in steps:
            continue
        if out and out[-1].step == activity:
            out[-1].last = at
        else:
            out.append(Run(activity, at, at))
    return out


def order_steps(sequences: Sequence[list[Run]], steps: set[Activity]) -> list[Activity]:
    """The usual order: a step comes before another when it does so in most transactions that have both
    (first occurrences); steps never seen together (alternatives) go by their median time from the start."""
    before: Counter[tuple[Activity, Activity]] = Counter()
    offsets: dict[Activity, list[float]] = defaultdict(list)
    variants: Counter[tuple[Activity, ...]] = Counter()  # steps in the order first reached, and how many
    for seq in sequences:
        if not seq:
            continue
        first: dict[Activity, float] = {}
        for run in seq:
            first.setdefault(run.step, run.first)
        for a, ta in first.items():
            offsets[a].append(ta - seq[0].first)
        variants[tuple(first)] += 1
    for variant, n in variants.items():
        for i, a in enumerate(variant):
            for b in variant[i + 1 :]:
                before[(a, b)] += n
    median = {a: statistics.median(offsets[a]) if offsets[a] else 0.0 for a in steps}
    remaining = set(steps)
    order: list[Activity] = []
    while remaining:

        def blockers(a: Activity) -> int:
            return sum(1 for b in remaining if b != a and before[(b, a)] > before[(a, b)])

        free = [a for a in remaining if blockers(a) == 0]
        # A cycle of majorities (a loop seen both ways): take the least contradicted step first.
        pool = free or [min(remaining, key=lambda a: (blockers(a), median[a]))]
        nxt = min(pool, key=lambda a: (median[a], a.service, a.span_name, a.kind))
        order.append(nxt)
        remaining.remove(nxt)
    return order


def measure(sequences: Sequence[list[Run]], order: list[Activity]) -> dict[Activity, StepStats]:
    """Per step: transactions that reached it, that got that far (reached it or a step ordered after it: a
    transaction still before it says nothing of it yet), that came back to it, and the wait before it
    (from the latest step before its first occurrence, as the state machine counts an SLA)."""
    position = {a: i for i, a in enumerate(order)}
    stats = {a: StepStats(a) for a in order}
    for index, seq in enumerate(sequences):
        if not seq:
            continue
        visits: Counter[Activity] = Counter(r.step for r in seq)
        furthest = max(position[r.step] for r in seq)
        for a in order[: furthest + 1]:
            stats[a].passed.add(index)
        for i, run in enumerate(seq):
            s = stats[run.step]
            if index in s.cases:
                continue
            s.cases.add(index)
            s.reached += 1
            s.repeated += visits[run.step] > 1
            if i > 0:
                s.waits[index] = run.first - seq[i - 1].last
    return stats


def transitions(sequences: Sequence[list[Run]]) -> list[Transition]:
    """Directly-follows counts between steps (start and end included) with the seconds between them."""
    found: dict[tuple[Activity | None, Activity | None], list[float]] = defaultdict(list)
    for seq in sequences:
        if not seq:
            continue
        found[(None, seq[0].step)].append(0.0)
        for a, b in zip(seq, seq[1:], strict=False):
            found[(a.step, b.step)].append(b.first - a.last)
        found[(seq[-1].step, None)].append(0.0)
    return [Transition(s, t, len(v), v) for (s, t), v in found.items()]


def _neighbours(moves: Iterable[Transition]) -> tuple[dict[Activity, Activity | None], dict[Activity, Activity | None]]:
    """Each step's most frequent direct predecessor and successor (None: the start or the end)."""
    into: dict[Activity, Counter[Activity | None]] = defaultdict(Counter)
    out: dict[Activity, Counter[Activity | None]] = defaultdict(Counter)
    for t in moves:
        if t.target is not None and t.target != t.source:
            into[t.target][t.source] += t.count
        if t.source is not None and t.source != t.target:
            out[t.source][t.target] += t.count
    pred = {a: c.most_common(1)[0][0] for a, c in into.items()}
    succ = {a: c.most_common(1)[0][0] for a, c in out.items()}
    return pred, succ


def _exclusive(a: StepStats, b: StepStats) -> bool:
    return len(a.cases & b.cases) <= EXCLUSIVE * min(a.reached, b.reached)


def _chains(steps: list[Activity], stats: dict[Activity, StepStats], moves: list[Transition]) -> list[list[Activity]]:
    """Steps grouped into chains that happen together, one right after the other (a branch of two steps:
    published, then viewed); every other step is a chain of its own."""
    pred, succ = _neighbours(moves)
    members = set(steps)

    def linked(a: Activity, b: Activity | None) -> bool:
        return (
            b is not None
            and b in members
            and b != a
            and pred.get(b) == a
            and len(stats[a].cases & stats[b].cases) >= TOGETHER * min(stats[a].reached, stats[b].reached)
        )

    heads = [a for a in steps if not any(linked(b, a) for b in steps)]
    chains: list[list[Activity]] = []
    for head in heads:
        chain = [head]
        while linked(chain[-1], succ.get(chain[-1])) and succ[chain[-1]] not in chain:
            nxt = succ[chain[-1]]
            assert nxt is not None
            chain.append(nxt)
        chains.append(chain)
    return chains


def gateways(order: list[Activity], stats: dict[Activity, StepStats], moves: list[Transition]) -> list[Gateway]:
    """Alternative paths: chains of steps that follow the same predecessor, lead to the same successor and are
    rarely in one transaction together, and that between them are taken by nearly every transaction that
    got that far. Candidates are the steps rarely seen with some other step (not every step only part of
    the transactions reach: the alternative ordered last, at the end of a flow, is reached by all that got
    as far as it)."""
    rest = order[1:]
    candidates = [a for a in rest if any(b != a and _exclusive(stats[a], stats[b]) for b in rest)]
    pred, succ = _neighbours(moves)
    by_ends: dict[tuple[Activity | None, Activity | None], list[list[Activity]]] = defaultdict(list)
    for chain in _chains(candidates, stats, moves):
        by_ends[(pred.get(chain[0]), succ.get(chain[-1]))].append(chain)
    found: list[Gateway] = []
    for chains in by_ends.values():
        if len(chains) < 2:
            continue
        cases = [set().union(*(stats[a].cases for a in chain)) for chain in chains]
        exclusive = all(
            len(cases[i] & cases[j]) <= EXCLUSIVE * min(len(cases[i]), len(cases[j]))
            for i in range(len(chains))
            for j in range(i + 1, len(chains))
        )
        eligible = max(stats[chain[0]].eligible for chain in chains)
        coverage = len(set().union(*cases)) / eligible if eligible else 0.0
        if exclusive and coverage >= REQUIRED_SHARE:
            ranked = sorted(zip(chains, cases, strict=True), key=lambda cc: (-len(cc[1]), order.index(cc[0][0])))
            found.append(Gateway([chain for chain, _ in ranked], coverage))
    return found


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def near_start(cases: Sequence[Case], since: float) -> tuple[list[str], float]:
    """Keys of the cases first seen within the usual duration (p95) of the window's start, and that
    duration: those may have begun before the window, and would look as if they skipped their first steps."""
    if not cases:
        return [], 0.0
    usual = percentile([c.duration for c in cases], 0.95)
    return [c.key for c in cases if c.start < since + usual], usual


def mine(cases: Sequence[Case]) -> Flow:
    """The flow the cases follow: steps in order, their statistics, transitions and alternatives."""
    steps, left_out = choose_steps(cases)
    sequences = [runs(case, steps) for case in cases]
    order = order_steps(sequences, steps)
    stats = measure(sequences, order)
    moves = transitions(sequences)
    return Flow(order, stats, moves, gateways(order, stats, moves), left_out)
