"""Access that fits a hospital: keys with scopes (an ingest key cannot read, a read key cannot change),
single sign-on through a trusted proxy only, signed sessions for the dashboards, and an audit log of
who changed silences and rules and ran replays."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import LiveServer, server_settings
from triage.auth import ApiKeys, Identity, KeySpec

INGEST, READ, ADMIN = "ingest-key-0123456789", "read-key-0123456789ab", "admin-key-0123456789a"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_scopes_proxy_users_and_the_audit_log(chdb_path: Path) -> None:
    keys = [
        {"key": INGEST, "scopes": ["ingest"], "name": "mirth-forwarder"},
        {"key": READ, "scopes": ["read"], "name": "noc-wallboard"},
        {"key": ADMIN, "scopes": ["read", "admin"], "name": "oncall-admin"},
    ]
    auth = {"trusted_proxies": ["127.0.0.1/32"], "user_header": "X-Forwarded-User"}
    server = LiveServer(server_settings(chdb_path, api_keys=keys, auth=auth)).start()
    api = f"{server.api}/api/v1"
    silence = {"matchers": [{"name": "alertname", "value": "po_blocked"}], "duration": "1h", "comment": "change 4411"}
    try:
        sample = [{"name": "edi-out", "system": "push", "backlog": 3}]
        assert httpx.post(f"{api}/queues/samples", json=sample, headers=_bearer(INGEST)).status_code == 202
        denied = httpx.get(f"{api}/transactions", headers=_bearer(INGEST))
        assert denied.status_code == 403 and "mirth-forwarder may not do this: it needs the 'read' scope" in denied.text
        assert httpx.get(f"{api}/transactions", headers=_bearer(READ)).status_code == 200
        assert httpx.post(f"{api}/queues/samples", json=sample, headers=_bearer(READ)).status_code == 403
        for method, path in (
            ("POST", "/silences"),
            ("POST", "/replay?from=2026-11-24T00:00:00Z&to=2026-11-24T01:00:00Z"),
        ):
            refused = httpx.request(method, f"{api}{path}", json=silence, headers=_bearer(READ))
            assert refused.status_code == 403 and "'admin' scope" in refused.text, (path, refused.text)
        assert httpx.get(f"{api}/transactions").status_code == 401

        created = httpx.post(f"{api}/silences", json=silence, headers=_bearer(ADMIN))
        assert created.status_code == 201, created.text
        assert created.json()["created_by"] == "oncall-admin"
        silence_id = created.json()["id"]
        assert httpx.delete(f"{api}/silences/{silence_id}", headers=_bearer(ADMIN)).status_code == 200
        window = {"from": "2026-11-24T00:00:00Z", "to": "2026-11-24T01:00:00Z"}
        assert httpx.post(f"{api}/replay", params=window, headers=_bearer(ADMIN)).status_code == 200

        # Single sign-on: the proxy's user header is believed from the proxy's address, with the proxy's scopes.
        as_alice = {"X-Forwarded-User": "alice@stmarys.example"}
        assert httpx.get(f"{api}/transactions", headers=as_alice).status_code == 200
        assert httpx.post(f"{api}/silences", json=silence, headers=as_alice).status_code == 403
        assert httpx.get(f"{api}/audit", headers=as_alice).status_code == 403, "reading the audit log is admin's"

        log = httpx.get(f"{api}/audit", headers=_bearer(ADMIN)).json()
        seen = [(e["actor"], e["action"]) for e in log]
        assert ("oncall-admin", "silence.create") in seen and ("oncall-admin", "silence.expire") in seen
        assert ("oncall-admin", "replay") in seen
        created_entry = next(e for e in log if e["action"] == "silence.create")
        assert created_entry["target"] == silence_id and created_entry["detail"]["comment"] == "change 4411"
        assert all(INGEST not in str(e) and ADMIN not in str(e) for e in log), "keys never reach the audit log"
    finally:
        server.stop()
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def test_a_user_header_is_not_believed_from_anywhere_else() -> None:
    keys = ApiKeys([KeySpec(ADMIN)], trusted_proxies=["10.0.0.5"])
    header = {"x-forwarded-user": "mallory"}
    assert keys.identify(header, client="192.0.2.7") is None
    assert keys.identify(header, client="10.0.0.5") == Identity("user:mallory", frozenset({"read"}))


def test_sessions_are_signed_scoped_and_expire() -> None:
    keys = ApiKeys([KeySpec(READ, ("read",), "wallboard")], session_seconds=60)
    token = keys.session_for(Identity("wallboard", frozenset({"read"})))
    assert READ not in token
    assert keys.session_identity(token) == Identity("wallboard", frozenset({"read"}))
    name, scopes, expires, signature = token.rsplit("|", 3)
    assert keys.session_identity(f"{name}|read,admin|{expires}|{signature}") is None, "scopes cannot be widened"
    assert keys.session_identity(token, now=time.time() + 61) is None, "a session ends"
    assert ApiKeys([KeySpec("another-key-0123456789")]).session_identity(token) is None, "new keys, new sessions"
