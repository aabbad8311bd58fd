"""GET /api/v1/traces/{trace_id}: the stored spans of one trace."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel

from app.api.deps import get_store
from triage.store import Store

router = APIRouter(tags=["traces"])
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")

_TRACE_BOUNDS = """
SELECT min(Start) AS start, max(End) AS end
FROM otel_traces_trace_id_ts
WHERE TraceId = {trace_id:String}
"""
_TRACE_SPANS = """
SELECT Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
       ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
       Events.Timestamp, Events.Name, Events.Attributes,
       Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes
FROM otel_traces
WHERE TraceId = {trace_id:String}
  AND Timestamp >= {start:DateTime64(9)} - INTERVAL 1 MINUTE
  AND Timestamp <= {end:DateTime64(9)} + INTERVAL 1 MINUTE
ORDER BY Timestamp
LIMIT 10000
"""


class SpanEvent(BaseModel):
    timestamp: datetime
    name: str
    attributes: dict[str, str]


class SpanLink(BaseModel):
    trace_id: str
    span_id: str
    trace_state: str
    attributes: dict[str, str]


class Span(BaseModel):
    timestamp: datetime
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    name: str
    kind: str
    service_name: str
    resource_attributes: dict[str, str]
    scope_name: str
    scope_version: str
    attributes: dict[str, str]
    duration_ns: int
    status_code: str
    status_message: str
    events: list[SpanEvent]
    links: list[SpanLink]


class Trace(BaseModel):
    trace_id: str
    spans: list[Span]


@router.get("/traces/{trace_id}", response_model=Trace, responses={404: {"description": "no such trace"}})
def get_trace(
    store: Annotated[Store, Depends(get_store)],
    trace_id: Annotated[str, Path(description="32 hex digits, any case")],
) -> Trace:
    """Every stored span of the trace, oldest first."""
    if not _HEX32.match(trace_id):
        raise HTTPException(422, f"trace id {trace_id!r} must be 32 hex digits")
    trace_id = trace_id.lower()
    bounds = store.query(_TRACE_BOUNDS, {"trace_id": trace_id}).first_row
    if not bounds or bounds[0] is None or bounds[0].year < 1971:
        raise HTTPException(
            404,
            f"no spans stored for trace {trace_id}: spans older than the raw retention are refused at ingest "
            "(named in the request's partial_success), and stored ones leave after it",
        )
    rows = store.query(_TRACE_SPANS, {"trace_id": trace_id, "start": bounds[0], "end": bounds[1]}).result_rows
    spans = [
        Span(
            timestamp=r[0],
            trace_id=r[1],
            span_id=r[2],
            parent_span_id=r[3],
            trace_state=r[4],
            name=r[5],
            kind=r[6],
            service_name=r[7],
            resource_attributes=r[8],
            scope_name=r[9],
            scope_version=r[10],
            attributes=r[11],
            duration_ns=r[12],
            status_code=r[13],
            status_message=r[14],
            events=[SpanEvent(timestamp=t, name=n, attributes=a) for t, n, a in zip(r[15], r[16], r[17], strict=True)],
            links=[
                SpanLink(trace_id=t, span_id=s, trace_state=ts, attributes=a)
                for t, s, ts, a in zip(r[18], r[19], r[20], r[21], strict=True)
            ],
        )
        for r in rows
    ]
    if not spans:
        raise HTTPException(404, f"no spans stored for trace {trace_id}")
    return Trace(trace_id=trace_id, spans=spans)
