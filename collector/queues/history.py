"""The `queue_lag` table: samples written by pollers and the push API, read back per queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from collector.metrics import WRITTEN_ROWS
from collector.queues.sample import QueueSample
from triage.store import Store

TABLE = "queue_lag"
COLUMNS = (
    "Timestamp",
    "Queue",
    "Source",
    "System",
    "Destination",
    "ConsumerGroup",
    "Backlog",
    "Unacked",
    "Consumers",
    "OldestAgeSeconds",
    "RateIn",
    "RateOut",
    "InTotal",
    "OutTotal",
    "RateSource",
    "Error",
)
# The newest samples of each queue: enough for any window, bounded so a chatty pusher costs little.
RECENT_SAMPLES = f"""
SELECT {", ".join(COLUMNS)}
FROM {TABLE}
WHERE Timestamp >= now64(3) - toIntervalSecond({{lookback:UInt32}})
ORDER BY Queue, Timestamp DESC
LIMIT {{per_queue:UInt32}} BY Queue
"""
PER_QUEUE = 200
LOOKBACK_SECONDS = 86_400


def _row(s: QueueSample) -> list[Any]:
    return [
        s.time,
        s.queue,
        s.source,
        s.system,
        s.destination,
        s.consumer_group,
        s.backlog,
        s.unacked,
        s.consumers,
        s.oldest_age_seconds,
        s.rate_in,
        s.rate_out,
        s.in_total,
        s.out_total,
        s.rate_source,
        s.error,
    ]


def write_samples(store: Store, samples: Sequence[QueueSample]) -> None:
    """Insert samples into queue_lag (a blocking call: run it in a worker thread)."""
    if not samples:
        return
    store.insert(TABLE, [_row(s) for s in samples], COLUMNS)
    WRITTEN_ROWS.labels(table=TABLE).inc(len(samples))


def _sample(row: Sequence[Any]) -> QueueSample:
    return QueueSample(
        time=row[0],
        queue=row[1],
        source=row[2],
        system=row[3],
        destination=row[4],
        consumer_group=row[5],
        backlog=row[6],
        unacked=row[7],
        consumers=row[8],
        oldest_age_seconds=row[9],
        rate_in=row[10],
        rate_out=row[11],
        in_total=row[12],
        out_total=row[13],
        rate_source=row[14],
        error=row[15],
    )


def recent_samples(
    store: Store, lookback_seconds: int = LOOKBACK_SECONDS, per_queue: int = PER_QUEUE
) -> dict[str, list[QueueSample]]:
    """Each queue's newest samples from the last `lookback_seconds`, oldest first."""
    rows = store.query(RECENT_SAMPLES, {"lookback": lookback_seconds, "per_queue": per_queue}).result_rows
    by_queue: dict[str, list[QueueSample]] = defaultdict(list)
    for row in rows:
        by_queue[row[1]].append(_sample(row))
    return {queue: samples[::-1] for queue, samples in by_queue.items()}
