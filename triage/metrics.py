"""What every part's metrics module shares: setting a labelled gauge to exactly the label sets of now."""

from __future__ import annotations

from prometheus_client import Gauge

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
