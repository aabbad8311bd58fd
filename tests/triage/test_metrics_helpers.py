"""observe_many() records what as many observe() calls record: the same buckets and count on /metrics, and
the same sum (up to float rounding: one product against many additions)."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from triage.metrics import observe_many

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    one, many = CollectorRegistry(), CollectorRegistry()
    return (
        one,
        Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=one),
        many,
        Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=many),
    )


def test_many_equal_observations_expose_as_one_at_a_time() -> None:
    rng = random.Random(7)
    one_registry, one, many_registry, many = _pair()
    # On the bounds, between them, past the last one, zero, and a count of none.
    amounts = [0.0, 0.1, 0.25, 0.3, 1.0, 4.99, 5.0, 7.5, *(round(rng.uniform(0, 8), 2) for _ in range(40))]
    for amount in amounts:
        count = rng.choice([0, 1, 3, 250])
        for _ in range(count):
            one.observe(amount)
        observe_many(many, amount, count)
    ours, theirs = _samples(many_registry), _samples(one_registry)
    assert ours.keys() == theirs.keys()
    assert ours["lag_seconds_count"] > 0
    for name, value in theirs.items():
        assert ours[name] == (pytest.approx(value) if name == "lag_seconds_sum" else value), name


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    """Every sample of the exposition but the creation time, by name and bucket bound."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                out[sample.name + sample.labels.get("le", "")] = sample.value
    return out
