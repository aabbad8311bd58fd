"""From a mined flow to a proposed workflow: each step's mark (required, optional, conditional,
alternative), human waits, SLAs per facility criticality, the value and facility attributes, and the
evidence behind each. The proposal is the configuration's own shape (discovery_yaml.py writes it).

How each mark is decided (docs/correlation.md, "Discovery", says the same to users):

- required: reached by at least REQUIRED_SHARE of the transactions that got that far (reached it
  or a step after it; transactions still before it say nothing yet);
- conditional `when: {min_value: N}`: reaching it follows the transaction's value, the rule
  "value ≥ N" having precision and recall of CONDITION_FIT or better among the transactions that got
  that far; N is the roundest number between the largest value below the cut and the smallest above;
- conditional `when: {attributes: {name: value}}`: the same, for an attribute of the first step that
  takes few values;
- optional: reached by only part of them, for no reason found;
- alternatives (`one_of`): see correlator.mining.gateways;
- human: a step of an approval-like or SaaS service (its service or span name says so) whose wait is
  long (a median at least LONG_WAIT times the workflow's typical step wait: the median of the steps'
  median waits) and variable (coefficient of variation at least VARIABLE_WAIT);
- SLA: the 95th percentile of the wait before the step, per facility criticality with at least
  MIN_TIER_SAMPLES waits (`normal` from all waits when its own tier has too few), times the margin,
  rounded up to a readable duration; never under MIN_SLA, so that a step that is normally instant (a
  call the step before makes) is not overdue at its first retry; a tier equal to the one it falls back
  to is left out.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from correlator.discovery_attributes import (
    CONDITION_FIT,
    Profile,
    condition_attributes,
    facility_attribute,
    fit,
    number,
    value_attribute,
    value_threshold,
)
from correlator.discovery_yaml import render
from correlator.mining import REQUIRED_SHARE, Activity, Case, Flow, Gateway, StepStats, percentile
from triage.durations import format_duration
from triage.settings import Facility

MARGIN = 1.5
LONG_WAIT = 1.0
VARIABLE_WAIT = 0.3
MIN_TIER_SAMPLES = 5
MIN_WAITS = 3
MIN_SLA = 60.0
_HUMAN = re.compile(r"approv|review|committee|sign[-_ ]?off|authori[sz]|inspect|attest|consent|manual|saas", re.I)
_TIERS = ("critical", "high", "normal")
_KINDS = ("internal", "server", "client", "producer", "consumer")
_NICE = [1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 120, 180, 300, 600, 900, 1200, 1800, 2700]
_NICE += [3600 * h for h in (1, 2, 3, 4, 6, 8, 12, 18)] + [86400 * d for d in (1, 2, 3, 5, 7, 14, 30)]


@dataclass(frozen=True)
class DiscoveredStep:
    name: str
    service: str
    span_name: str
    kind: str
    transactions: int  # reached it
    share: float  # of the transactions that got that far
    median_seconds: float | None  # wait from the step before
    p95_seconds: float | None
    variation: float | None  # coefficient of variation of that wait
    repeated: int  # transactions that came back to it after another step (a loop)
    mark: str  # first, required, optional, conditional, alternative
    human: bool
    reason: str


@dataclass(frozen=True)
class DiscoveredTransition:
    from_step: str  # "" is the start
    to_step: str  # "" is the end
    count: int
    median_seconds: float


@dataclass(frozen=True)
class LeftOutActivity:
    service: str
    span_name: str
    kind: str
    reason: str


@dataclass(frozen=True)
class RelatedAttribute:
    """Another attribute that holds some of the keys found: the key under another name."""

    name: str
    spans: int
    services: list[str]


@dataclass(frozen=True)
class DiscoveryEvidence:
    keys: list[str]
    since: datetime
    until: datetime
    transactions: int
    log_records: int  # carrying the key
    left_censored: int  # begun before the window could show their start: not counted
    value_attribute: str | None
    facility_attribute: str | None
    margin: float
    steps: list[DiscoveredStep]
    transitions: list[DiscoveredTransition]
    left_out: list[LeftOutActivity]
    related: list[RelatedAttribute] = field(default_factory=list)  # the key under other attribute names
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Discovery:
    workflow: dict[str, Any]  # the configuration's shape: a `workflows:` entry
    yaml: str  # `workflows: [that]`, with the evidence as comments
    evidence: DiscoveryEvidence


@dataclass
class _Context:
    flow: Flow
    cases: Sequence[Case]
    names: dict[Activity, str]
    value: str | None
    facility: str | None
    criticality: dict[str, str]
    margin: float
    typical_wait: float
    conditions: list[str]  # attributes a `when:` may name


def propose(
    flow: Flow,
    cases: Sequence[Case],
    profile: Profile,
    *,
    keys: list[str],
    since: datetime,
    until: datetime,
    value: str | None,
    facilities: Sequence[Facility],
    name: str | None,
    margin: float,
    log_records: int,
    left_censored: int = 0,
    related: Sequence[RelatedAttribute] = (),
) -> Discovery:
    """The workflow the flow suggests, with its evidence."""
    first = flow.order[0]
    value = value or value_attribute(profile, first, keys)
    facility = facility_attribute(profile, first, keys)
    criticality = {f.id: str(f.criticality) for f in facilities}
    waits = [statistics.median(s.waits.values()) for s in flow.stats.values() if len(s.waits) >= MIN_WAITS]
    typical = statistics.median(waits) if waits else 0.0
    conditions = condition_attributes(profile, first, keys)
    ctx = _Context(flow, cases, step_names(flow), value, facility, criticality, margin, typical, conditions)
    items, evidence = _items(ctx)
    workflow: dict[str, Any] = {"name": name or _slug(f"discovered_{keys[0]}"), "keys": keys}
    if facility:
        workflow["facility"] = facility
    if value:
        workflow["value"] = value
    workflow["steps"] = items
    workflow["terminal"] = terminal(items)
    notes = _notes(ctx, facilities, keys, related)
    found = DiscoveryEvidence(
        keys, since, until, len(cases), log_records, left_censored, value, facility, margin, evidence,
        _transitions(ctx), [LeftOutActivity(a.service, a.span_name, a.kind, why) for a, why in sorted(
            flow.left_out.items(), key=lambda kv: (kv[0].service, kv[0].span_name))], list(related), notes,
    )  # fmt: skip
    return Discovery(workflow, render(workflow, found), found)


def _items(ctx: _Context) -> tuple[list[dict[str, Any]], list[DiscoveredStep]]:
    """The flow's items (steps and one_of gateways) in order, and the evidence of every step."""
    flow = ctx.flow
    in_gateway = {a: g for g in flow.gateways for branch in g.branches for a in branch}
    items: list[dict[str, Any]] = []
    evidence: list[DiscoveredStep] = []
    done: set[Activity] = set()
    for index, activity in enumerate(flow.order):
        if activity in done:
            continue
        gateway = in_gateway.get(activity)
        if gateway is None:
            step, ev = _step(ctx, activity, first=index == 0)
            items.append(step)
            evidence.append(ev)
            done.add(activity)
            continue
        branches = []
        for branch in gateway.branches:
            steps = [_step(ctx, a, alternative=gateway) for a in branch]
            branches.append([s for s, _ in steps] if len(steps) > 1 else steps[0][0])
            evidence += [e for _, e in steps]
            done.update(branch)
        items.append({"one_of": branches})
    return items, evidence


def _step(
    ctx: _Context, activity: Activity, first: bool = False, alternative: Gateway | None = None
) -> tuple[dict[str, Any], DiscoveredStep]:
    stats = ctx.flow.stats[activity]
    step: dict[str, Any] = {"name": ctx.names[activity], "match": match(activity, ctx.flow)}
    mark, reason = "first", "where transactions begin"
    if alternative is not None:
        paths = len(alternative.branches)
        mark, reason = "alternative", f"one of {paths} alternative paths ({alternative.coverage:.0%} took one)"
    elif not first and stats.share >= REQUIRED_SHARE:
        mark, reason = "required", "required"
    elif not first:
        when, why = condition(ctx, stats)
        if when:
            step["when"], mark, reason = when, "conditional", f"conditional: {why}"
        else:
            step["optional"], mark = True, "optional"
            reason = "optional: no value or attribute explains which transactions reach it"
    median, p95, cv = wait_figures(list(stats.waits.values()))
    human = not first and is_human(ctx, activity, median, cv)
    if human:
        step["human"] = True
        reason += f"; waits look human (median {_seconds(median)}, variation {cv:.2f})"
    if not first:
        sla = sla_for(ctx, stats)
        if sla:
            step["sla"] = sla
    ev = DiscoveredStep(
        step["name"], activity.service, activity.span_name, activity.kind, stats.reached, round(stats.share, 4),
        median, p95, cv, stats.repeated, mark, human, reason,
    )  # fmt: skip
    return _ordered(step), ev


def _ordered(step: dict[str, Any]) -> dict[str, Any]:
    order = ("name", "match", "human", "optional", "when", "sla")
    return {k: step[k] for k in order if k in step}


def match(activity: Activity, flow: Flow) -> dict[str, str]:
    """service and span_name, and kind where another activity seen has the same two."""
    out = {"service": activity.service, "span_name": activity.span_name}
    out = {k: v for k, v in out.items() if v}  # an empty one would match anything: say nothing of it
    seen = [*flow.order, *flow.left_out]
    same = [a for a in seen if a != activity and (a.service, a.span_name) == (activity.service, activity.span_name)]
    if (same or not out) and activity.kind.lower() in _KINDS:
        out["kind"] = activity.kind.lower()
    return out


def step_names(flow: Flow) -> dict[Activity, str]:
    """A name per step from its span name; the service's name in front where two would be the same."""
    short = {a: _slug(a.span_name) or _slug(a.service) or "step" for a in flow.order}
    counts: dict[str, int] = {}
    for n in short.values():
        counts[n] = counts.get(n, 0) + 1
    names: dict[Activity, str] = {}
    for a, n in short.items():
        name = n if counts[n] == 1 else _slug(f"{a.service}_{n}")
        candidate, i = name, 1
        while candidate in names.values():
            i += 1
            candidate = f"{name}_{a.kind.lower()}" if i == 2 else f"{name}_{i}"
        names[a] = candidate
    return names


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def terminal(items: list[dict[str, Any]]) -> list[str]:
    """The last steps: of the last required item (a gateway's branch ends), and of any optional or
    conditional steps after it (a transaction that reaches them is done as well)."""
    out: list[str] = []
    for item in reversed(items):
        if "one_of" in item:
            for branch in item["one_of"]:
                out.append((branch[-1] if isinstance(branch, list) else branch)["name"])
            break
        out.append(item["name"])
        if not (item.get("optional") or item.get("when")):
            break
    return list(reversed(out))


def wait_figures(waits: list[float]) -> tuple[float | None, float | None, float | None]:
    """Median, 95th percentile and coefficient of variation of a step's waits (None with too few)."""
    if not waits:
        return None, None, None
    median = statistics.median(waits)
    mean = statistics.fmean(waits)
    cv = statistics.pstdev(waits) / mean if len(waits) >= MIN_WAITS and mean > 0 else None
    return round(median, 3), round(percentile(waits, 0.95), 3), round(cv, 3) if cv is not None else None


def is_human(ctx: _Context, activity: Activity, median: float | None, cv: float | None) -> bool:
    """Long, variable waits before a step of an approval-like or SaaS service."""
    if median is None or cv is None or median <= 0 or not _HUMAN.search(f"{activity.service} {activity.span_name}"):
        return False
    return median >= LONG_WAIT * ctx.typical_wait and cv >= VARIABLE_WAIT


def sla_for(ctx: _Context, stats: StepStats) -> dict[str, str] | None:
    """p95 of the wait × margin per criticality tier with enough waits; `normal` always (from all waits
    when the normal tier has too few)."""
    if len(stats.waits) < MIN_WAITS:
        return None
    by_tier: dict[str, list[float]] = {t: [] for t in _TIERS}
    for index, wait in stats.waits.items():
        tier = ctx.criticality.get(ctx.cases[index].attributes.get(ctx.facility or "", ""), "")
        if tier:
            by_tier[tier].append(wait)
    sla: dict[str, str] = {}

    def due(waits: list[float]) -> str:
        return readable(max(percentile(waits, 0.95) * ctx.margin, MIN_SLA))

    normal = by_tier["normal"] if len(by_tier["normal"]) >= MIN_TIER_SAMPLES else list(stats.waits.values())
    sla["normal"] = due(normal)
    for tier in ("high", "critical"):  # each falls back to the next less critical tier: say only what differs
        fallback = sla.get("high", sla["normal"])
        if len(by_tier[tier]) >= MIN_TIER_SAMPLES and due(by_tier[tier]) != fallback:
            sla[tier] = due(by_tier[tier])
    return {t: sla[t] for t in _TIERS if t in sla}


def readable(seconds: float) -> str:
    """The smallest readable duration at or above `seconds`: 45s, 10m, 2h, 3d."""
    nice = next((n for n in _NICE if n >= seconds), math.ceil(seconds / 86400) * 86400)
    if nice % 86400 == 0:
        return f"{nice // 86400}d"
    if nice % 3600 == 0:
        return f"{nice // 3600}h"
    if nice % 60 == 0:
        return f"{nice // 60}m"
    return f"{nice}s"


def _seconds(value: float | None) -> str:
    return format_duration(value) if value is not None else "—"


def condition(ctx: _Context, stats: StepStats) -> tuple[dict[str, Any] | None, str]:
    """`when:` for a step only part of the transactions reach, if their value or an attribute explains it."""
    eligible = sorted(stats.passed)
    best: tuple[float, dict[str, Any], str] | None = None
    if ctx.value:
        values = [(ctx.cases[i].attributes.get(ctx.value), i in stats.cases) for i in eligible]
        known = [(float(v), hit) for v, hit in values if v is not None and number(v)]
        found = value_threshold(known)
        if found:
            threshold, score = found
            why = f"reached when {ctx.value} ≥ {threshold:,g} (fit {score:.2f} over {len(known)} transactions)"
            best = (score, {"min_value": threshold}, why)
    for name in ctx.conditions:
        if name in (ctx.value, ctx.facility):
            continue
        seen = [(ctx.cases[i].attributes.get(name, ""), i in stats.cases) for i in eligible]
        for wanted in {v for v, hit in seen if hit and v}:
            hits = sum(1 for v, h in seen if v == wanted and h)
            score = fit(
                hits, sum(1 for v, h in seen if v == wanted and not h), sum(1 for v, h in seen if v != wanted and h)
            )
            if score >= CONDITION_FIT and (best is None or score > best[0]):
                best = (score, {"attributes": {name: wanted}}, f"reached when {name} = {wanted} (fit {score:.2f})")
    return (best[1], best[2]) if best else (None, "")


def _transitions(ctx: _Context) -> list[DiscoveredTransition]:
    out = [
        DiscoveredTransition(
            ctx.names[t.source] if t.source else "",
            ctx.names[t.target] if t.target else "",
            t.count,
            round(statistics.median(t.seconds), 3),
        )
        for t in ctx.flow.transitions
    ]
    return sorted(out, key=lambda t: (-t.count, t.from_step, t.to_step))


def _notes(
    ctx: _Context, facilities: Sequence[Facility], keys: list[str], related: Sequence[RelatedAttribute]
) -> list[str]:
    notes = []
    for other in related:
        notes.append(
            f"{other.name} holds the same keys on {other.spans:,} spans ({', '.join(other.services)}): to follow "
            f"them there too, give key={','.join([*keys, other.name])}"
        )
    if not ctx.value:
        notes.append("no numeric attribute that looks like money on the first step: give value=ATTR to use one")
    elif not any(number(c.attributes.get(ctx.value, "")) for c in ctx.cases):
        notes.append(f"no span of these transactions carries a number in {ctx.value}: no step is conditional on it")
    if not facilities:
        notes.append("no facilities configured: SLAs are proposed for the normal tier only")
    elif not ctx.facility:
        notes.append("no attribute carries the configured facility ids: SLAs are proposed for the normal tier only")
    loops = [ctx.names[a] for a, s in ctx.flow.stats.items() if s.repeated]
    if loops:
        notes.append(
            f"reached again after a later step (a loop; the state machine follows the latest): {', '.join(loops)}"
        )
    return notes
