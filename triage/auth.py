"""Optional API keys for ingest and API: `Authorization: Bearer KEY` or `x-api-key: KEY`."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


class ApiKeys:
    """A set of accepted keys; with none configured, every request is allowed."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def allows(self, headers: Mapping[str, str]) -> bool:
        """True when no keys are configured or the request carries one of them."""
        if not self._keys:
            return True
        given = headers.get("x-api-key", "")
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        candidate = given.encode()
        return any(hmac.compare_digest(candidate, key) for key in self._keys)

    CHALLENGE = "missing or wrong API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
