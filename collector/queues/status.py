"""A queue's status from its recent samples, in the spirit of Burrow's consumer evaluation.

Pure functions over a sliding window of samples (oldest first). In order, the first rule that
holds wins:

- `unknown`: no sample yet, the latest poll failed, or the latest sample is stale;
- `stopped`: backlog > 0, no consumers, and nothing consumed since the previous sample;
- `stalled`: backlog > 0 in every sample of a window that spans at least half its length, and
  nothing consumed across it (no rate_out, no consumer-offset move, no backlog decrease);
- `lagging`: backlog grew at every step over at least three samples, or the time lag is above
  the threshold;
- `ok` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from collector.queues.sample import QueueSample

Status = Literal["ok", "lagging", "stalled", "stopped", "unknown"]
Trend = Literal["growing", "draining", "flat"]


@dataclass(frozen=True)
class Thresholds:
    window_seconds: float = 300.0
    lag_seconds: float = 300.0
    stale_seconds: float | None = 45.0  # None: never stale (pushed samples come when they come)
    growing_samples: int = 3


@dataclass(frozen=True)
class Assessment:
    status: Status
    detail: str
    trend: Trend | None = None
    time_lag_seconds: float | None = None


def _consumed(before: QueueSample, after: QueueSample) -> bool:
    """Whether anything left the queue between two good samples."""
    if after.rate_out is not None and after.rate_out > 0:
        return True
    if before.out_total is not None and after.out_total is not None:
        return after.out_total > before.out_total
    return (after.backlog or 0) < (before.backlog or 0)


def trend(samples: Sequence[QueueSample]) -> Trend | None:
    """Whether the backlog grew or shrank from the first to the last sample of the window."""
    if len(samples) < 2:
        return None
    first, last = samples[0].backlog or 0, samples[-1].backlog or 0
    return "growing" if last > first else "draining" if last < first else "flat"


def drain_rate(samples: Sequence[QueueSample]) -> float | None:
    """Messages consumed per second over the window: the mean rate_out, else the backlog's fall."""
    rates = [s.rate_out for s in samples if s.rate_out is not None]
    if rates:
        return sum(rates) / len(rates)
    if len(samples) < 2:
        return None
    seconds = (samples[-1].time - samples[0].time).total_seconds()
    fall = (samples[0].backlog or 0) - (samples[-1].backlog or 0)
    return max(fall, 0) / seconds if seconds > 0 else None


def time_lag(samples: Sequence[QueueSample]) -> float | None:
    """Seconds behind: the oldest message's age if the broker tells it, else backlog ÷ drain rate."""
    latest = samples[-1]
    if latest.oldest_age_seconds is not None:
        return latest.oldest_age_seconds
    if not latest.backlog:
        return 0.0
    rate = drain_rate(samples)
    return latest.backlog / rate if rate else None


def _growing(samples: Sequence[QueueSample], at_least: int) -> bool:
    backlogs = [s.backlog or 0 for s in samples]
    steps = list(zip(backlogs, backlogs[1:], strict=False))
    return len(backlogs) >= at_least and all(b >= a for a, b in steps) and backlogs[-1] > backlogs[0]


def _window(samples: Sequence[QueueSample], seconds: float) -> list[QueueSample]:
    """The good samples no older than `seconds` before the latest one."""
    good = [s for s in samples if s.ok]
    if not good:
        return []
    start = good[-1].time.timestamp() - seconds
    return [s for s in good if s.time.timestamp() >= start]


def assess(
    samples: Sequence[QueueSample], thresholds: Thresholds | None = None, now: datetime | None = None
) -> Assessment:
    """The status of one queue from its samples, oldest first."""
    t = thresholds or Thresholds()
    if not samples:
        return Assessment("unknown", "no sample yet")
    latest = samples[-1]
    if latest.error:
        return Assessment("unknown", latest.error)
    if latest.backlog is None:
        return Assessment("unknown", "the broker reported no backlog")
    age = (now - latest.time).total_seconds() if now else 0.0
    if t.stale_seconds is not None and age > t.stale_seconds:
        return Assessment("unknown", f"no sample for {age:.0f}s; is the poller running?")
    window = _window(samples, t.window_seconds)
    lag = time_lag(window)
    result = _judge(window, t, lag)
    return Assessment(result[0], result[1], trend(window), lag)


def _judge(window: list[QueueSample], t: Thresholds, lag: float | None) -> tuple[Status, str]:
    latest = window[-1]
    backlog = latest.backlog or 0
    pairs = list(zip(window, window[1:], strict=False))
    consumed_lately = bool(pairs) and _consumed(*pairs[-1])
    if backlog > 0 and latest.consumers == 0 and not consumed_lately:
        return "stopped", f"no consumers while {backlog} messages wait"
    span = (latest.time - window[0].time).total_seconds()
    if (
        backlog > 0
        and span >= t.window_seconds / 2
        and all((s.backlog or 0) > 0 for s in window)
        and not any(_consumed(a, b) for a, b in pairs)
    ):
        return "stalled", f"{backlog} messages and nothing consumed in {span:.0f}s"
    if _growing(window, t.growing_samples):
        return "lagging", f"backlog grew from {window[0].backlog} to {backlog} in {span:.0f}s"
    if lag is not None and lag > t.lag_seconds:
        return "lagging", f"{lag:.0f}s behind (threshold {t.lag_seconds:.0f}s)"
    if not backlog:
        return "ok", "empty"
    behind = f", about {lag:.0f}s behind" if lag is not None else ""
    return "ok", f"{backlog} messages waiting{behind}"
