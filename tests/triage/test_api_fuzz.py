"""Every operation of the API's own OpenAPI document, called with values generated from (and around) its
schema — hostile strings, extreme numbers and times, bodies of the wrong shape — against a live server:
0 server errors. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer

_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "-1",
            "1e400",
            "NaN",
            "' OR 1=1 --",
            "{x:String}",
            "../../etc/passwd",
            "\x00",
            "%",
            "stalled,blocked,nope",
            "a" * 3000,
        ]
    ),
)
_NUMBER = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, 1, 1000, 1001, -1]))
_VALUE = st.one_of(_TEXT, _NUMBER.map(str))
_BODY = st.recursive(
    st.none() | st.booleans() | _NUMBER | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=20,
)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if path.startswith("/dashboards") or path in ("/metrics",):
                continue
            ops.append((method.upper(), path, op))
    return ops


def _example_body(op: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A body the schema describes, so that generated variants also reach past the first validation."""
    content = op.get("requestBody", {}).get("content", {})
    schema = (content.get("application/json") or {}).get("schema", {})
    ref = schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    if name == "SilenceRequest":
        return {"matchers": [{"name": "alertname", "value": "x"}], "duration": "1h"}
    if schema.get("type") == "array":
        return [{"name": "edi-out", "system": "push", "backlog": 1}]
    return {"name": "po_blocked", "when": {"state": ["blocked"]}}


def test_no_operation_answers_a_server_error(live_server: LiveServer) -> None:
    spec = httpx.get(f"{live_server.api}/openapi.json", timeout=30).json()
    operations = _operations(spec)
    assert len(operations) >= 15, "the API's operations are all here"
    errors: list[str] = []

    @settings(max_examples=len(operations) * 12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def call(data: st.DataObject) -> None:
        method, path, op = data.draw(st.sampled_from(operations))
        url = path
        params: dict[str, str] = {}
        for p in op.get("parameters", []):
            value = data.draw(_VALUE)
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", quote(value, safe="") or "x")
            elif data.draw(st.booleans()):
                params[p["name"]] = value
        kwargs: dict[str, Any] = {"params": params, "timeout": 60}
        if "requestBody" in op:
            content = op["requestBody"].get("content", {})
            if "application/json" in content:
                body = data.draw(st.one_of(st.just(_example_body(op, spec)), _BODY))
                kwargs["content"] = json.dumps(body).encode()
                kwargs["headers"] = {"Content-Type": "application/json"}
            else:
                kwargs["content"] = data.draw(st.binary(max_size=300))
                kwargs["headers"] = {"Content-Type": data.draw(st.sampled_from(["text/plain", "application/x-ndjson"]))}
        response = httpx.request(method, f"{live_server.api}{url}", **kwargs)
        if response.status_code >= 500:
            sent = kwargs.get("content", b"")[:300]
            errors.append(f"{method} {url} {params} {sent!r} -> {response.status_code}: {response.text[:200]}")

    call()
    assert errors == [], "\n".join(errors[:10])
