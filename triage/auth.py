"""API keys with scopes, browser sessions, and the identity of whoever makes a request.

A key carries scopes: `ingest` (OTLP, raw log lines, pushed queue samples), `read` (the API's GETs,
the dashboards) and `admin` (silences, rules, replays). A key written as a plain string has all
three. Keys travel in `Authorization: Bearer KEY` or `x-api-key: KEY`, never in URLs; the dashboards
sign in once through a login form and then carry a session cookie (HMAC-signed, expiring, not the
key). Behind an authenticating proxy (oauth2-proxy and the like), the user name may come from a
header — accepted only from the configured proxy addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")


@dataclass(frozen=True)
class Identity:
    """Who is asking, and what they may do."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes


ANONYMOUS = Identity("anonymous", frozenset(SCOPES))  # no keys configured: everything is open


@dataclass(frozen=True)
class KeySpec:
    key: str
    scopes: tuple[str, ...] = SCOPES
    name: str = ""

    @property
    def label(self) -> str:
        """How the audit log names the key's user: its name, or a short fingerprint (never the key)."""
        return self.name or "key:" + hashlib.sha256(self.key.encode()).hexdigest()[:8]


class ApiKeys:
    """The accepted keys; with none configured, every request is allowed (as ANONYMOUS)."""

    CHALLENGE = "missing or wrong API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"

    def __init__(
        self,
        keys: Iterable[str | KeySpec],
        *,
        trusted_proxies: Iterable[str] = (),
        user_header: str = "x-forwarded-user",
        proxy_scopes: Iterable[str] = ("read",),
        session_seconds: float = 12 * 3600,
    ) -> None:
        self._keys = [k if isinstance(k, KeySpec) else KeySpec(k) for k in keys if (k if isinstance(k, str) else k.key)]
        self._networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.user_header = user_header.lower()
        self._proxy_scopes = frozenset(proxy_scopes)
        self.session_seconds = session_seconds
        # Derived from the keys: every replica signs alike, and changing the keys ends every session.
        self._secret = hashlib.sha256(
            b"triage-session\0" + b"\0".join(sorted(k.key.encode() for k in self._keys))
        ).digest()

    @property
    def enabled(self) -> bool:
        return bool(self._keys) or bool(self._networks)

    def identify(self, headers: Mapping[str, str], client: str | None = None, cookie: str = "") -> Identity | None:
        """The identity a request proves (key, trusted proxy's user header, or session cookie); None if none."""
        if not self.enabled:
            return ANONYMOUS
        given = headers.get("x-api-key", "")
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if given:
            candidate = given.encode()
            for spec in self._keys:
                if hmac.compare_digest(candidate, spec.key.encode()):
                    return Identity(spec.label, frozenset(spec.scopes))
            return None
        user = headers.get(self.user_header, "")
        if user and client and self._from_proxy(client):
            return Identity(f"user:{user}", self._proxy_scopes)
        if cookie:
            return self.session_identity(cookie)
        return None

    def allows(self, headers: Mapping[str, str], scope: str = "ingest") -> bool:
        """True when the request carries a key with `scope` (or no keys are configured)."""
        identity = self.identify(headers)
        return identity is not None and identity.may(scope)

    def _from_proxy(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    # -- sessions (the dashboards' cookie) -------------------------------------------------------

    def session_for(self, identity: Identity, now: float | None = None) -> str:
        """A signed session token: who, what they may do, until when. Not the key."""
        expires = int((now or time.time()) + self.session_seconds)
        payload = f"{identity.name}|{','.join(sorted(identity.scopes))}|{expires}"
        signature = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}|{signature}"

    def session_identity(self, token: str, now: float | None = None) -> Identity | None:
        """The identity a session token names, or None when it is forged, altered or expired."""
        try:
            name, scopes, expires, signature = token.rsplit("|", 3)
            payload = f"{name}|{scopes}|{expires}"
            good = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(good, signature) or int(expires) < (now or time.time()):
                return None
        except ValueError:
            return None
        return Identity(name, frozenset(s for s in scopes.split(",") if s))
