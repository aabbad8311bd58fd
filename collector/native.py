"""The native trace path: OTLP requests inserted as ClickHouse `Protobuf`, decoded and flattened in C++.

Serialized ExportTraceServiceRequests go, length-delimited, to the Null-engine table
`otel_traces_otlp_in` (migration 0003) with the projection schema
`collector/proto/otlp_traces_projection.proto`; the materialized view `otel_traces_otlp_in_mv`
writes one otel_traces row per span, with the same values as collector.flatten.trace_columns
(doubles are ClickHouse's toString(Float64) here, e.g. '1e-7' where the Python path writes
'1e-07').

Requests whose attributes hold arrays or kvlists must take the Python path (collector.flatten):
the projection has no such AnyValue members, so those values would be stored as ''.

Where the engine finds the schema:
- chDB (embedded) accepts an absolute path in the `format_schema` setting, so it reads the
  file straight from this package; a relative path would resolve against the process's
  working directory, which is why none is used.
- A ClickHouse server only reads schemas under its `format_schema_path` (server config,
  default /var/lib/clickhouse/format_schemas/) and rejects absolute paths, so the file must be
  copied there on every server node (deploy/ ships it; install_schema() does the copy where
  that directory is reachable). Without it the insert fails and the caller falls back to the
  Python path. (format_schema_source='string' with the file's text as format_schema also works,
  at the cost of sending the schema with every insert.)

Which AnyValue member was set: the input table maps each scalar member to a Nullable column, and
ClickHouse leaves a Nullable column NULL when its field is absent, so the non-NULL one is the
member that was sent, even as 0, false or ''. (input_format_protobuf_oneof_presence would say so
too, but needs ClickHouse 25.7+ and fails the whole insert when one AnyValue carries two members,
which protobuf allows: last wins. With Nullable columns such a value renders by a fixed priority:
string, int, double, bool, bytes.)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from triage.store import Store

__all__ = [
    "INPUT_TABLE",
    "SCHEMA_FILE",
    "SCHEMA_MESSAGE",
    "encode_requests",
    "insert_trace_requests",
    "install_schema",
    "insert_settings",
    "schema_setting",
    "with_request",
]

SCHEMA_FILE: Final[Path] = Path(__file__).resolve().parent / "proto" / "otlp_traces_projection.proto"
SCHEMA_MESSAGE: Final[str] = "ExportTraceServiceRequest"
INPUT_TABLE: Final[str] = "otel_traces_otlp_in"


def schema_setting(store: Store) -> str:
    """The `format_schema` value under which the store's engine finds the projection schema."""
    if store.target.embedded:
        if not SCHEMA_FILE.is_file():
            raise FileNotFoundError(f"the OTLP projection schema is missing from the package: {SCHEMA_FILE}")
        return f"{SCHEMA_FILE}:{SCHEMA_MESSAGE}"
    # Relative to the server's format_schema_path, where deploy/ installs the file.
    return f"{SCHEMA_FILE.name}:{SCHEMA_MESSAGE}"


def install_schema(format_schema_path: str | Path) -> Path:
    """Copy the projection schema into a server's format_schema_path directory; return the copy."""
    target_dir = Path(format_schema_path)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / SCHEMA_FILE.name
    shutil.copyfile(SCHEMA_FILE, target)
    return target


def insert_settings(store: Store) -> dict[str, str]:
    """ClickHouse settings for a Protobuf insert into otel_traces_otlp_in."""
    return {"format_schema": schema_setting(store)}


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_requests(payloads: Iterable[bytes]) -> bytes:
    """Serialized ExportTraceServiceRequests as one length-delimited (varint-prefixed) stream."""
    parts: list[bytes] = []
    for payload in payloads:
        parts.append(_varint(len(payload)))
        parts.append(payload)
    return b"".join(parts)


# Field 100 (varint) of the projection's ExportTraceServiceRequest: the request's id, copied to its spans.
_REQUEST_TAG = _varint(100 << 3)  # field 100, wire type 0


def with_request(payload: bytes, request: int) -> bytes:
    """The serialized request with its write-ahead log id appended (protobuf merges appended fields)."""
    return payload + _REQUEST_TAG + _varint(request) if request else payload


def insert_trace_requests(store: Store, payloads: list[bytes]) -> None:
    """Insert serialized ExportTraceServiceRequests into otel_traces through the native path."""
    if not payloads:
        return
    store.client.raw_insert(
        INPUT_TABLE,
        insert_block=encode_requests(payloads),
        fmt="Protobuf",
        settings=insert_settings(store),
    )
