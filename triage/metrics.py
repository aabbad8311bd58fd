"""What every part's metrics module shares: setting a labelled gauge to exactly the label sets of now, and
recording many equal observations in a histogram at once."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

_published: dict[Gauge, set[tuple[str, ...]]] = {}


def publish(gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
    """Set a gauge to exactly these label sets: the ones that vanished are removed, not left stale."""
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    for labels in _published.get(gauge, set()) - set(values):
        try:
            gauge.remove(*labels)
        except KeyError:
            pass
    _published[gauge] = set(values)


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """Record `count` observations of `amount` at once, exactly as that many `observe(amount)` calls do
    (prometheus-client has no bulk form; a cycle observes one lag per span, tens of thousands of them)."""
    if count <= 0:
        return
    histogram._raise_if_not_observable()
    histogram._sum.inc(amount * count)
    buckets = histogram._buckets
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            buckets[i].inc(count)
            break
