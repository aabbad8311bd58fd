"""Ground truth: the state and cause Triage should give each simulated transaction, and when.

From the events a transaction's telemetry carries (simulator.observe) and the health of the
dependencies, following the states and causes of triage.vocabulary as docs/correlation.md defines them:

- the last step reached (latest successful step event) is the current step; a terminal one is
  `completed`;
- after it, a transformation failure makes the transaction `failed` (transformation_failed, on
  the failing channel or service); its own calls failing, the last of them too, make it
  `blocked` (dependency_error, on the peer);
- the next step is the next required one: optional steps and conditional steps whose `when` does
  not hold (the transaction's value, attributes its events held) are passed over, and a flow that
  ends with such steps is `completed` without them; before a `one_of`, the branch with the longest
  SLA counts;
- once the next step is overdue (its SLA for the facility's criticality, counted from the last
  step): a message it sent (the last step's own producer span included) that no consumer took makes
  it `blocked` (queue_backlog, on the queue; `<entry>/<topic>/<group>` for a topic an exporter
  watches); else the next step's service failing ≥ `dependency_error_rate` of its calls (and at
  least `dependency_min_errors` of them) in the health window makes it `blocked`
  (dependency_error); else `stalled`: awaiting_approval when the next step is a person's,
  unknown otherwise.

Triage answers with some lag, so a transaction whose expected answer changes within a few
seconds of the truth's time is marked unsettled: no observer can hold Triage to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simulator.observe import SPAN, Observation
from triage.settings import Settings, Step, Workflow
from triage.vocabulary import STUCK, CauseKind, State


@dataclass(frozen=True)
class Expected:
    state: str
    cause_kind: str | None = None
    component: str | None = None
    # When the next step fell or falls due (epoch seconds), while one is awaited: set on a stuck verdict only
    # when it is stuck because that time passed (not because of a failure of its own).
    due: float | None = None


@dataclass(frozen=True)
class Margins:
    """How far from the truth's time Triage's answer may be taken (seconds)."""

    behind: float = 6.0  # Triage judges with a clock up to this much older than the truth's
    ahead: float = 4.0  # ...or newer: the answer is read a little after the truth is written
    lag: float = 5.0  # telemetry sent this long before Triage's clock may not be stitched yet
    step: float = 1.0


class HealthLedger:
    """Every span's health contribution: (time, sent at, error) per component."""

    def __init__(self, window: float, rate: float, min_errors: int) -> None:
        self.window = window
        self.rate = rate
        self.min_errors = min_errors
        self._calls: dict[str, list[tuple[float, float, bool]]] = {}

    def record(self, at: float, emitted: float, components: Iterable[str], error: bool) -> None:
        for component in components:
            self._calls.setdefault(component, []).append((at, emitted, error))

    def unhealthy(self, component: str, clock: float, visible: float) -> bool:
        """Whether the component fails too often in the window before `clock`, from spans sent by `visible`."""
        since = clock - self.window
        calls = errors = 0
        for at, emitted, error in self._calls.get(component, ()):
            if at >= since and emitted <= visible:
                calls += 1
                errors += error
        return errors >= self.min_errors and errors / max(calls, 1) >= self.rate

    def prune(self, before: float) -> None:
        """Forget calls older than `before` (they are out of every window still to be judged)."""
        for component, calls in self._calls.items():
            self._calls[component] = [c for c in calls if c[0] >= before]


@dataclass(frozen=True)
class Wait:
    """One wait of a transaction for its next step: from its last progress event at `step` (epoch seconds)
    until the next progress event of another step (`ended`, None while it waits), and when its SLA passes."""

    step: str
    started: float
    due: float
    ended: float | None
    failed: bool  # a step failed for good during the wait (the transaction failed: no breach to forecast)


class Judge:
    """Expected verdicts for transactions of the configured workflows."""

    def __init__(self, settings: Settings, health: HealthLedger) -> None:
        self.workflows = {w.name: w for w in settings.workflows}
        self.criticality = {f.id: f.criticality for f in settings.facilities}
        self.queue_names: dict[str, str] = {}
        for q in settings.queues:
            if q.kind == "prometheus" and q.queue and q.group:
                # An exporter's queue is one topic read by one group: `<entry>/<topic>/<group>`.
                self.queue_names[q.queue] = f"{q.name}/{q.queue}/{q.group}"
                continue
            for alias in (q.name, q.queue, q.stream):
                if alias:
                    self.queue_names[alias] = q.name
        self.health = health

    def expected(
        self, workflow: str, observations: Sequence[Observation], clock: float, visible: float
    ) -> Expected | None:
        """The verdict at time `clock` from the events sent by `visible`; None when none is sent yet."""
        wf = self.workflows[workflow]
        obs = sorted((o for o in observations if o.emitted <= visible), key=lambda o: o.at_ns)
        if not obs:
            return None
        progress = [i for i, o in enumerate(obs) if o.progress]
        last = progress[-1] if progress else None
        current = obs[last].step if last is not None else ""
        value = max((o.value for o in obs), default=0.0)
        held: dict[str, set[str]] = {}
        for o in obs:
            for name, seen in o.attributes.items():
                held.setdefault(name, set()).add(seen)
        frontier = _frontier(wf, current, value, held)
        if last is not None and (current in wf.terminal or _ends(wf, current, frontier)):
            return Expected(State.COMPLETED)
        last_at = obs[last].at_ns if last is not None else obs[0].at_ns
        after = [o for i, o in enumerate(obs) if o.at_ns >= last_at and i != last]
        failure = next((o for o in after if o.failure), None)
        if failure is not None:
            return Expected(State.FAILED, CauseKind.TRANSFORMATION_FAILED, failure.service)
        own = _own_error(after)
        if own is not None:
            return Expected(State.BLOCKED, CauseKind.DEPENDENCY_ERROR, own)
        facility = next((o.facility for o in obs if o.facility), "")
        next_step, sla = _next(frontier, self.criticality.get(facility, "normal"))
        if sla is None:
            return Expected(State.IN_PROGRESS)
        due = last_at / 1e9 + sla
        if clock <= due:
            return Expected(State.IN_PROGRESS, due=due)
        sent = [obs[last], *after] if last is not None else after  # a step's own message counts as sent
        queue = _pending_queue(sent)
        if queue is not None:
            return Expected(State.BLOCKED, CauseKind.QUEUE_BACKLOG, self.queue_names.get(queue, queue), due)
        for step in frontier:
            service = step.match.service
            if service and self.health.unhealthy(service, clock, visible):
                return Expected(State.BLOCKED, CauseKind.DEPENDENCY_ERROR, service, due)
        if next_step is not None and next_step.human:
            human = next_step.match.service or next_step.name
            return Expected(State.STALLED, CauseKind.AWAITING_APPROVAL, human, due)
        return Expected(State.STALLED, CauseKind.UNKNOWN, next_step.name if next_step else current, due)

    @staticmethod
    def held(
        expected: Expected | None, observations: Sequence[Observation], since: float | None, clock: float, late: float
    ) -> bool:
        """Whether Triage holds an overdue verdict back for a cycle at `clock` (the previous cycle was at `since`,
        and did not call the transaction stuck): what arrived in between is all from before the due time and
        some of it arrived `late` seconds or more after its own time (a backfill, a backlog catching up), so
        the rest of it may yet show the transaction moved on (docs/correlation.md, "Late data")."""
        if expected is None or expected.due is None or expected.state not in STUCK:
            return False
        fresh = [o for o in observations if (since is None or o.emitted > since) and o.emitted <= clock]
        if not fresh or any(o.at >= expected.due for o in fresh):
            return False
        return any(o.emitted - o.at >= late for o in fresh)

    def waits(self, workflow: str, observations: Sequence[Observation]) -> list[Wait]:
        """Every wait under an SLA the transaction has had, in order, as the correlator times them: from the
        last progress event of a step to the first of another (what breach forecasts are judged against)."""
        wf = self.workflows[workflow]
        obs = sorted(observations, key=lambda o: o.at_ns)
        progress = [o for o in obs if o.progress]
        value = max((o.value for o in obs), default=0.0)
        held: dict[str, set[str]] = {}
        for o in obs:
            for name, seen in o.attributes.items():
                held.setdefault(name, set()).add(seen)
        facility = next((o.facility for o in obs if o.facility), "")
        out = []
        for i, o in enumerate(progress):
            if i + 1 < len(progress) and progress[i + 1].step == o.step:
                continue  # the wait starts at the step's last event
            frontier = _frontier(wf, o.step, value, held)
            if o.step in wf.terminal or _ends(wf, o.step, frontier):
                break
            _, sla = _next(frontier, self.criticality.get(facility, "normal"))
            ended = progress[i + 1].at if i + 1 < len(progress) else None
            if sla is None:
                continue
            failed = any(f.failure and o.at <= f.at and (ended is None or f.at < ended) for f in obs)
            out.append(Wait(o.step, o.at, o.at + sla, ended, failed))
        return out

    def settled(self, workflow: str, observations: Sequence[Observation], at: float, margins: Margins) -> bool:
        """Whether stuck-or-not, and the cause, hold for every clock and lag an observer of Triage may meet
        near `at` (a move between in_progress, completed and not yet seen does not count: none is stuck)."""
        expected = self.expected(workflow, observations, at, at)
        if expected is None:
            return False
        lo, hi = at - margins.behind, at + margins.ahead
        newest = max(o.emitted for o in observations)
        if newest < lo - margins.lag and expected.state in (State.COMPLETED, State.FAILED):
            return True  # nothing recent and nothing time can change
        verdict = _stuck_or_not(expected)
        clocks = _grid(lo, hi, margins.step)
        clocks.extend(t for o in observations for t in (o.emitted, o.emitted + margins.lag) if lo < t < hi)
        for clock in clocks:
            for visible in (clock, clock - margins.lag):
                if _stuck_or_not(self.expected(workflow, observations, clock, min(visible, at))) != verdict:
                    return False
        return True


def _stuck_or_not(expected: Expected | None) -> Expected:
    """The verdict as stuck-work detection sees it: the stuck state and its cause, or just "not stuck"."""
    if expected is None or expected.state not in STUCK:
        return Expected(State.IN_PROGRESS)
    return expected


def _grid(lo: float, hi: float, step: float) -> list[float]:
    count = int((hi - lo) / step)
    return [lo + i * step for i in range(count + 1)] + [hi]


def _frontier(workflow: Workflow, current: str, value: float, held: dict[str, set[str]]) -> list[Step]:
    """The required steps that may come next: past optional steps and conditional steps whose
    `when` does not hold for this transaction (its value, the attributes its events held)."""

    def applies(step: Step) -> bool:
        when = step.when
        if when is None:
            return True
        if when.min_value is not None and value < when.min_value:
            return False
        return all(want in held.get(name, set()) for name, want in when.attributes.items())

    return workflow.frontier(current, applies)


def _ends(workflow: Workflow, current: str, frontier: list[Step]) -> bool:
    """Nothing more is required and a terminal step lies beyond `current`, skipped: the flow is done."""
    return not frontier and any(s.name in workflow.terminal for s in workflow.next_steps(current))


def _next(frontier: list[Step], criticality: str) -> tuple[Step | None, float | None]:
    """The step waited for and its SLA: between alternative branches the longest SLA (none if one has none)."""
    if not frontier:
        return None, None
    slas = [s.sla.for_criticality(criticality) if s.sla else None for s in frontier]
    for step, sla in zip(frontier, slas, strict=True):
        if sla is None:
            return step, None
    longest = max(v for v in slas if v is not None)
    return next(s for s, v in zip(frontier, slas, strict=True) if v == longest), longest


def _own_error(after: Sequence[Observation]) -> str | None:
    """The first component whose calls after the last step failed, the last call included."""
    calls: dict[str, list[Observation]] = {}
    for o in after:
        if o.source != SPAN or not (o.error or o.span_kind in ("Client", "Server", "Internal")):
            continue
        calls.setdefault(o.peer or o.service, []).append(o)
    for component, made in calls.items():
        if any(c.error for c in made) and made[-1].error:
            return component
    return None


def _pending_queue(after: Sequence[Observation]) -> str | None:
    """The destination of the latest message sent after the last step that no consumer took."""
    consumed = {o.message_id for o in after if o.span_kind == "Consumer" and o.message_id}
    consumed_dest = {o.destination for o in after if o.span_kind == "Consumer" and not o.message_id}
    for o in reversed(after):
        if o.span_kind != "Producer" or not o.destination:
            continue
        if (o.message_id and o.message_id in consumed) or (not o.message_id and o.destination in consumed_dest):
            continue
        return o.destination
    return None
