"""Triage's exception hierarchy: every message says what was wrong, where, and how to fix it."""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error Triage raises on purpose."""


class ConfigError(TriageError):
    """The configuration (file, environment or flags) is invalid."""


class StoreError(TriageError):
    """The ClickHouse store cannot be reached or refused an operation."""


class MigrationError(StoreError):
    """A schema migration failed; the store is left at the last applied version."""


class DecodeError(TriageError):
    """An OTLP request body cannot be decoded."""


class PayloadTooLarge(DecodeError):
    """A request body, compressed or not, exceeds the configured size limit."""


class UnsupportedMediaType(DecodeError):
    """A request's content type or encoding is not one OTLP defines."""


class Overloaded(TriageError):
    """The request cannot be taken now; the client should retry after `retry_after` seconds.

    `unavailable`: the cause is on the server's side (store or disk failing: HTTP 503), not load (429).
    """

    def __init__(self, message: str, retry_after: int = 1, unavailable: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unavailable = unavailable
