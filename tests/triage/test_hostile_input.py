"""Values a hostile or careless client sends get a 4xx that names the problem, never a 5xx."""

from __future__ import annotations

import base64
import json

import httpx

from tests.conftest import LiveServer


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_times_outside_the_store_and_forged_cursors_are_refused(live_server: LiveServer) -> None:
    api = f"{live_server.api}/api/v1"
    far = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "1899-12-31T23:59:59Z"]
    for since in far:
        response = httpx.get(f"{api}/transactions", params={"since": since})
        assert response.status_code == 422 and "outside the times Triage stores" in response.text, response.text
    assert httpx.get(f"{api}/transactions", params={"since": "2026-11-24T09:00:00Z"}).status_code == 200
    for cursor in [
        "not base64 at all!",
        _cursor({"a": 1}),
        _cursor([1, 2, 3]),
        _cursor([1.0, "9999-12-31T00:00:00+00:00", "w", "k"]),
        _cursor([1e400, "2026-11-24T09:00:00+00:00", "w", "k"]),
        _cursor(["NaN", "2026-11-24T09:00:00+00:00", "w", "k"]),
        _cursor([1.0, 12, "w", "k"]),
    ]:
        response = httpx.get(f"{api}/transactions", params={"cursor": cursor})
        assert response.status_code == 422 and "cursor" in response.text, (cursor, response.text)
    for start, end in [
        ("0001-01-01T00:00:00Z", "2026-11-24T00:00:00Z"),
        ("2026-11-24T00:00:00Z", "9999-01-01T00:00:00Z"),
    ]:
        response = httpx.post(f"{api}/replay", params={"from": start, "to": end})
        assert response.status_code == 422 and "outside the times" in response.text, response.text


def test_silences_and_pushed_samples_with_impossible_times_are_refused(live_server: LiveServer) -> None:
    api = f"{live_server.api}/api/v1"
    matcher = [{"name": "alertname", "value": "po_blocked"}]
    forever = httpx.post(f"{api}/silences", json={"matchers": matcher, "duration": "99999999999d"})
    assert forever.status_code == 422 and "too long" in forever.text, forever.text
    late = httpx.post(f"{api}/silences", json={"matchers": matcher, "ends_at": "9999-01-01T00:00:00Z"})
    assert late.status_code == 422 and "outside the times" in late.text, late.text
    sample = {"name": "edi-out", "system": "push", "backlog": 3, "time": "0001-01-01T00:00:00Z"}
    pushed = httpx.post(f"{api}/queues/samples", json=[sample])
    assert pushed.status_code == 422 and "outside the times" in pushed.text, pushed.text
    future = httpx.post(f"{api}/queues/samples", json=[{**sample, "time": "9999-01-01T00:00:00Z"}])
    assert future.status_code == 422 and "in the future" in future.text, future.text
