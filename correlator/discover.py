"""Workflow discovery: from the raw spans and logs that carry a business key, propose the workflow.

`discover(store, "erp.po_number", since)` reads what the key's transactions did, stitched as the
correlator stitches (a key on any span joins its whole trace; traces join along span links and
producer/consumer message ids, `trace_edges` included where a correlator has written them; a log
record with the key joins its trace), and proposes a workflow in the configuration's own shape:
steps in their usual order, how many transactions reached each and the wait before it, optional and
conditional steps, alternatives, loops, human waits, SLAs per facility criticality.

Four statements read the store: one profiles the attributes of the spans that name the key (where
the value and facility attributes are found), one returns every transaction's activities in time
order, one says which transactions near the window's start had begun before it, one which other
attributes hold some of the keys (the key under another name); mining them is
Python (correlator.mining), the proposal is correlator.proposal. None writes anything, so discovery
runs without a correlator and without workflows configured.

What an activity is, and which spans are left out (judgement, not a rule of OpenTelemetry): an
activity is a distinct (service, span name, kind). Only spans that enter a service count: roots,
server and consumer spans, and spans that name the key themselves; a service's internal detail
(a database call, a mapping sub-span) is part of the step it serves. Client, producer and consumer
spans are plumbing around a step of their own service and are left out, unless that service shows
nothing else: an EDI translator that only sends, a warehouse that only consumes, is a step by them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from correlator.discovery_attributes import Profile
from correlator.mining import Activity, Case, mine, near_start
from correlator.proposal import MARGIN, Discovery, RelatedAttribute, propose
from correlator.rules import Params, log_keys_expr, span_keys_expr
from correlator.stitch import MESSAGE_ID  # the stitcher's own message-id expression, older names included
from triage.errors import TriageError
from triage.settings import Facility, KeyFormat, Workflow
from triage.store import Store

MAX_KEYS = 10  # attribute names one discovery takes
MAX_CANDIDATES = 40  # attributes fetched per transaction (value, facility, conditions)
DEFAULT_LIMIT = 10_000  # transactions read, the most recent first

_WINDOW = "Timestamp >= {since:DateTime64(9)} AND Timestamp <= {until:DateTime64(9)}"

_PROFILE = f"""
SELECT ServiceName, SpanName, SpanKind, name, any(total), count(),
       countIf(isFinite(num)), avgIf(num, isFinite(num)), stddevPopIf(num, isFinite(num)), uniq(v),
       countIf(has({{facility_ids:Array(String)}}, v))
FROM (
    SELECT ServiceName, SpanName, SpanKind, SpanAttributes,
           count() OVER (PARTITION BY ServiceName, SpanName, SpanKind) AS total
    FROM otel_traces WHERE {_WINDOW} AND notEmpty(__SPAN_KEYS__)
)
ARRAY JOIN mapKeys(SpanAttributes) AS name, mapValues(SpanAttributes) AS v,
           arrayMap(x -> ifNull(toFloat64OrNull(x), nan), mapValues(SpanAttributes)) AS num
GROUP BY ServiceName, SpanName, SpanKind, name
UNION ALL
SELECT '', '', 'log records', '', count(), count(), 0, 0, 0, 0, 0
FROM otel_logs WHERE {_WINDOW} AND notEmpty(__LOG_KEYS__)
"""

# Keys of a trace: named by its spans, or by log records in it; then along edges (links, message ids).
_CASES = f"""
WITH RECURSIVE
direct AS (
    SELECT TraceId, Key FROM (SELECT TraceId, __SPAN_KEYS__ AS ks FROM otel_traces WHERE {_WINDOW} AND notEmpty(ks))
    ARRAY JOIN ks AS Key
    UNION DISTINCT
    SELECT TraceId, Key FROM (
        SELECT TraceId, __LOG_KEYS__ AS ks FROM otel_logs WHERE {_WINDOW} AND TraceId != '' AND notEmpty(ks)
    ) ARRAY JOIN ks AS Key
),
edges AS (
    SELECT FromTrace, ToTrace FROM trace_edges
    WHERE SeenAt >= {{since:DateTime64(9)}} AND SeenAt <= {{until:DateTime64(9)}}
    UNION DISTINCT
    SELECT link AS FromTrace, TraceId AS ToTrace FROM otel_traces ARRAY JOIN Links.TraceId AS link
    WHERE {_WINDOW} AND link != '' AND link != TraceId
    UNION DISTINCT
    SELECT p.TraceId AS FromTrace, c.TraceId AS ToTrace
    FROM (SELECT TraceId, {MESSAGE_ID} AS mid FROM otel_traces
          WHERE {_WINDOW} AND SpanKind = 'Consumer' AND mid != '') AS c
    INNER JOIN (SELECT TraceId, {MESSAGE_ID} AS mid FROM otel_traces
                WHERE {_WINDOW} AND SpanKind = 'Producer' AND mid != '') AS p ON p.mid = c.mid
    WHERE p.TraceId != c.TraceId
),
reach AS (
    SELECT TraceId, Key, toUInt8(0) AS hops FROM direct
    UNION ALL
    SELECT e.ToTrace AS TraceId, r.Key AS Key, toUInt8(r.hops + 1) AS hops
    FROM reach AS r INNER JOIN edges AS e ON e.FromTrace = r.TraceId
    WHERE r.hops < {{hops:UInt8}}
)
SELECT Key, arraySort(groupArray((At, ServiceName, SpanName, SpanKind))), __ATTRIBUTES__
FROM (
    SELECT k.Key AS Key, s.SpanId AS SpanId, toUnixTimestamp64Nano(s.Timestamp) AS At, s.Timestamp AS Timestamp,
           s.ServiceName AS ServiceName, s.SpanName AS SpanName, s.SpanKind AS SpanKind,
           s.ParentSpanId AS ParentSpanId, s.SpanAttributes AS SpanAttributes, __OWN_KEYS__ AS own
    FROM otel_traces AS s INNER JOIN (SELECT DISTINCT TraceId, Key FROM reach) AS k ON s.TraceId = k.TraceId
    WHERE s.Timestamp >= {{since:DateTime64(9)}} AND s.Timestamp <= {{until:DateTime64(9)}}
      AND (empty(own) OR has(own, k.Key))
      AND (ParentSpanId = '' OR SpanKind IN ('Server', 'Consumer') OR notEmpty(own))
    LIMIT 1 BY Key, SpanId
)
GROUP BY Key
ORDER BY min(At) DESC
LIMIT {{limit:UInt32}}
"""

# Which of the keys near the window's start spans named before it.
_BEGUN_BEFORE = """
SELECT DISTINCT Key FROM (
    SELECT __SPAN_KEYS__ AS ks FROM otel_traces
    WHERE Timestamp >= {before:DateTime64(9)} AND Timestamp < {since:DateTime64(9)} AND notEmpty(ks)
) ARRAY JOIN ks AS Key
WHERE has({keys:Array(String)}, Key)
"""

# Other attributes that hold some of the keys found: the same key under another name (approval-saas's
# po.number beside the ERP's erp.po_number), which the caller may want to add.
_ALSO_NAMED = f"""
SELECT name, count(), groupUniqArray(5)(ServiceName)
FROM (SELECT ServiceName, SpanAttributes FROM otel_traces WHERE {_WINDOW})
ARRAY JOIN mapKeys(SpanAttributes) AS name, mapValues(SpanAttributes) AS v
WHERE v IN (SELECT arrayJoin({{sample:Array(String)}})) AND NOT has({{keys:Array(String)}}, name)
GROUP BY name
HAVING count() >= 2
ORDER BY count() DESC, name
LIMIT 10
"""
SAMPLE_KEYS = 200  # keys looked for under other attribute names

_SPAN_ATTRIBUTE_NAMES = f"""
SELECT DISTINCT name FROM (
    SELECT arrayJoin(mapKeys(SpanAttributes)) AS name FROM otel_traces WHERE {_WINDOW}
    UNION ALL
    SELECT arrayJoin(mapKeys(LogAttributes)) AS name FROM otel_logs WHERE {_WINDOW}
) LIMIT 5000
"""


class NothingToDiscover(TriageError):
    """No span or log record in the window carries the key attribute (or the request names none)."""


def key_names(key_attribute: str | Sequence[str]) -> list[str]:
    """The attribute names asked for: a list, or one string of names separated by commas."""
    given = [key_attribute] if isinstance(key_attribute, str) else list(key_attribute)
    names = list(dict.fromkeys(n.strip() for part in given for n in part.split(",") if n.strip()))
    if not names:
        raise NothingToDiscover("name the attribute that carries the business key, e.g. key=erp.po_number")
    if len(names) > MAX_KEYS:
        raise NothingToDiscover(f"{len(names)} key attributes given; name at most {MAX_KEYS}")
    return names


def discover(
    store: Store,
    key_attribute: str | Sequence[str],
    since: datetime,
    until: datetime | None = None,
    *,
    value: str | None = None,
    facilities: Sequence[Facility] = (),
    name: str | None = None,
    key_format: KeyFormat | None = None,
    hops: int = 3,
    limit: int = DEFAULT_LIMIT,
    margin: float = MARGIN,
) -> Discovery:
    """Propose the workflow of the transactions whose spans or logs carry `key_attribute` (one name, or
    several, in the order a span is looked at: "erp.po_number,po.number") between `since` and `until`."""
    keys = key_names(key_attribute)
    until = until or datetime.now(UTC)
    if until <= since:
        raise NothingToDiscover(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    lens = Workflow.model_validate(
        {"name": "discovery", "keys": keys, "key_format": key_format or KeyFormat(), "steps": [_ANY_STEP]}
    )
    window = {"since": since, "until": until}
    profile, log_records = _profile(store, lens, window, facilities)
    if not profile and not log_records:
        raise NothingToDiscover(_nothing_found(store, keys, window))
    candidates = profile.candidates(keys, value, MAX_CANDIDATES)
    cases = _cases(store, lens, window, candidates, hops, limit)
    if not cases:
        raise NothingToDiscover(
            f"{log_records:,} log records carry {', '.join(keys)} since {since.isoformat()}, but no span does: "
            "discovery proposes steps from spans"
        )
    begun = _begun_before(store, lens, since, *near_start(cases, since.timestamp()))
    if len(begun) < len(cases):  # left out of the marks: they would look as if they skipped their first steps
        cases = [c for c in cases if c.key not in begun]
    flow = mine(cases)
    if not flow.order:
        raise NothingToDiscover(
            f"{len(cases)} transaction(s) carry {', '.join(keys)} since {since.isoformat()}: too few to see a flow "
            "(a step needs at least two); widen since"
        )
    return propose(
        flow,
        cases,
        profile,
        keys=keys,
        since=since,
        until=until,
        value=value,
        facilities=facilities,
        name=name,
        margin=margin,
        log_records=log_records,
        left_censored=len(begun),
        related=_also_named(store, keys, window, [c.key for c in cases[:SAMPLE_KEYS]]),
    )


_ANY_STEP = {"name": "any", "match": {"span_name": "any"}}  # the throw-away workflow needs one


def _sql(template: str, lens: Workflow, params: Params, **extra: str) -> str:
    parts = {
        "__SPAN_KEYS__": span_keys_expr(lens, params),
        "__LOG_KEYS__": log_keys_expr(lens, params),
        "__OWN_KEYS__": span_keys_expr(lens, params, "s.SpanAttributes"),
        **extra,
    }
    for marker, expr in parts.items():
        template = template.replace(marker, expr)
    return template


def _profile(
    store: Store, lens: Workflow, window: dict[str, datetime], facilities: Sequence[Facility]
) -> tuple[Profile, int]:
    params = Params()
    sql = _sql(_PROFILE, lens, params)
    rows = store.query(sql, {**params.values, **window, "facility_ids": [f.id for f in facilities]}).result_rows
    logs = sum(int(r[4]) for r in rows if r[2] == "log records")
    spans = [r for r in rows if r[2] != "log records"]
    return Profile.from_rows(spans, {f.id: str(f.criticality) for f in facilities}), logs


def _cases(
    store: Store, lens: Workflow, window: dict[str, datetime], candidates: list[str], hops: int, limit: int
) -> list[Case]:
    """Every transaction of the window with its activities in time order and the first value of each
    candidate attribute (from the spans that belong to it)."""
    params = Params()
    firsts = [
        f"argMinIf(SpanAttributes[{ref}], Timestamp, SpanAttributes[{ref}] != '')"
        for ref in (params.add(c) for c in candidates)
    ]
    attributes = f"[{', '.join(firsts)}]" if firsts else "CAST([], 'Array(String)')"
    sql = _sql(_CASES, lens, params, __ATTRIBUTES__=attributes)
    bound: dict[str, Any] = {**params.values, **window, "hops": max(0, min(hops, 10)), "limit": limit}
    out = []
    known: dict[tuple[str, str, str], Activity] = {}  # one object per activity: compared by identity first
    for key, events, values in store.query(sql, bound).result_rows:
        steps = []
        for at, service, span, kind in events:
            activity = known.get((service, span, kind))
            if activity is None:
                activity = known[(service, span, kind)] = Activity(service, span, kind)
            steps.append((at / 1e9, activity))
        attrs = {c: v for c, v in zip(candidates, values, strict=True) if v}
        out.append(Case(str(key), steps, attrs))
    return out


def _begun_before(store: Store, lens: Workflow, since: datetime, keys: list[str], usual: float) -> set[str]:
    """The keys among `keys` that spans named in the `usual` duration of a transaction before `since`."""
    if not keys:
        return set()
    params = Params()
    sql = _sql(_BEGUN_BEFORE, lens, params)
    bound = {**params.values, "before": since - timedelta(seconds=usual), "since": since, "keys": keys}
    return {str(r[0]) for r in store.query(sql, bound).result_rows}


def _also_named(
    store: Store, keys: list[str], window: dict[str, datetime], sample: list[str]
) -> list[RelatedAttribute]:
    """Attributes other than `keys` whose values are some of the keys found (a sample of them)."""
    bound = {**window, "sample": sample, "keys": keys}
    rows = store.query(_ALSO_NAMED, bound).result_rows if sample else []
    return [RelatedAttribute(str(name), int(n), sorted(str(s) for s in services)) for name, n, services in rows]


def _nothing_found(store: Store, keys: list[str], window: dict[str, datetime]) -> str:
    """Why nothing was found, with the attribute names of the window that look like the ones asked for."""
    names = [str(r[0]) for r in store.query(_SPAN_ATTRIBUTE_NAMES, window).result_rows]
    close = list(dict.fromkeys(m for k in keys for m in difflib.get_close_matches(k, names, n=5, cutoff=0.6)))
    since = window["since"].isoformat()
    asked = ", ".join(keys)
    if not names:
        return f"no spans or log records since {since}: send telemetry first, or widen since"
    hint = f"; attributes that look close: {', '.join(close)}" if close else ""
    return f"no span or log record since {since} carries {asked}{hint}"
