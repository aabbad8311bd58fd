"""Parse a store DSN into what clickhouse-connect needs: embedded chDB or a ClickHouse server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse

from triage.errors import ConfigError

DEFAULT_DATABASE = "triage"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class StoreTarget:
    """Where the store lives: `embedded` (chDB data path) or a server URL, plus the database."""

    embedded: bool
    database: str
    path: str = ""
    host: str = ""
    port: int = 8123
    secure: bool = False
    username: str = "default"
    password: str = ""

    def describe(self) -> str:
        """A DSN-like description without the password, for logs and errors."""
        if self.embedded:
            return f"chdb://{self.path} (database {self.database})"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_dsn(dsn: str) -> StoreTarget:
    """Parse `chdb:///path[?database=db]` or `http(s)://user:pass@host:port/db`."""
    parsed = urlparse(dsn)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    if parsed.scheme == "chdb":
        path = unquote(parsed.path) if not parsed.netloc else f"/{parsed.netloc}{unquote(parsed.path)}"
        if not path or path == "/":
            raise ConfigError(f"store DSN {dsn!r} names no data directory: write it as chdb:///var/lib/triage")
        database = query.get("database", DEFAULT_DATABASE)
        _check_database(dsn, database)
        return StoreTarget(embedded=True, database=database, path=path)
    if parsed.scheme in ("http", "https", "clickhouse", "clickhouses"):
        secure = parsed.scheme in ("https", "clickhouses")
        database = unquote(parsed.path.strip("/")) or query.get("database", DEFAULT_DATABASE)
        _check_database(dsn, database)
        if not parsed.hostname:
            raise ConfigError(f"store DSN {dsn!r} names no host: write it as http://user:pass@host:8123/triage")
        return StoreTarget(
            embedded=False,
            database=database,
            host=parsed.hostname,
            port=parsed.port or (8443 if secure else 8123),
            secure=secure,
            username=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
        )
    raise ConfigError(
        f"store DSN {dsn!r} has scheme {parsed.scheme!r}; use chdb:///path (embedded) "
        "or http(s)://user:pass@host:8123/db (ClickHouse server)"
    )


def _check_database(dsn: str, database: str) -> None:
    if not _DB_NAME.match(database):
        raise ConfigError(f"store DSN {dsn!r}: database name {database!r} must be letters, digits and underscores")
