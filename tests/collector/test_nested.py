"""The RE2 shape scan for nested attribute values agrees with the exact walk on every request."""

from __future__ import annotations

import random
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.native_insert import build_request
from collector.nested import has_nested_values, walk_for_nested


def _add_nested(req: ExportTraceServiceRequest, rng: random.Random) -> None:
    rs = req.resource_spans[0]
    span = rng.choice(rs.scope_spans[0].spans)
    target = rng.choice(
        [span.attributes, span.events.add().attributes, span.links.add().attributes, rs.resource.attributes]
    )
    kv = target.add()
    kv.key = "nested"
    shape = rng.choice(["array", "kvlist", "empty_array", "empty_kvlist"])
    if shape == "array":
        for _ in range(rng.randrange(1, 50)):
            kv.value.array_value.values.add().string_value = "x" * rng.randrange(0, 400)
    elif shape == "kvlist":
        kv.value.kvlist_value.values.add(key="k" * rng.randrange(1, 300)).value.int_value = rng.randrange(-5, 5)
    elif shape == "empty_array":
        kv.value.array_value.SetInParent()
    else:
        kv.value.kvlist_value.SetInParent()


@pytest.mark.parametrize("seed", range(40))
def test_scan_agrees_with_walk(seed: int) -> None:
    rng = random.Random(seed)
    req = ExportTraceServiceRequest.FromString(build_request(rng, rng.randrange(1, 200), time.time_ns()))
    if seed % 2:
        _add_nested(req, rng)
    payload = req.SerializeToString()
    assert has_nested_values(req, payload) == walk_for_nested(req) == bool(seed % 2)
