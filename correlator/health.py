"""Dependency health from spans: per service (and per called peer), calls, errors, since when.

Shared by the correlator (is the next step's service failing?) and alert rules over dependency
error rates, so both judge a dependency by the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from correlator.machine import Health
from triage.store import Store

_HEALTH = """
SELECT component, count() AS calls, countIf(err) AS errors, minIf(Timestamp, err) AS first_error,
       argMaxIf(detail, Timestamp, err) AS last_detail
FROM (
    SELECT Timestamp,
           (StatusCode = 'Error' OR toUInt16OrZero(SpanAttributes['http.response.status_code']) >= 500) AS err,
           multiIf(StatusMessage != '', StatusMessage, SpanAttributes['http.response.status_code'] != '',
                   concat('HTTP ', SpanAttributes['http.response.status_code']), 'error') AS detail,
           arrayJoin(arrayDistinct(arrayFilter(x -> x != '', [ServiceName, SpanAttributes['peer.service'],
                     SpanAttributes['server.address']]))) AS component
    FROM otel_traces
    WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp <= {until:DateTime64(9)}
      AND SpanKind IN ('Server', 'Client', 'Consumer', 'Internal')
)
WHERE empty({services:Array(String)}) OR has({services:Array(String)}, component)
GROUP BY component
"""


def dependency_health(
    store: Store, since: datetime, until: datetime, services: Sequence[str] = ()
) -> dict[str, Health]:
    """Health of every service and called peer seen in spans between `since` and `until`."""
    rows = store.query(_HEALTH, {"since": since, "until": until, "services": list(services)}).result_rows
    return {r[0]: Health(int(r[1]), int(r[2]), r[3] if int(r[2]) else None, r[4]) for r in rows}
