"""POST /api/v1/logs/raw?source=NAME: raw integration-engine log lines, parsed by the source's profile.

NAME is a `log_sources` entry or, with none of that name, a built-in profile used as it is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from app.api.deps import get_runtime
from collector import builtin_log_sources, decompress, find_log_source, ingest_lines, read_body, split_lines
from triage.errors import DecodeError, Overloaded, PayloadTooLarge, UnsupportedMediaType
from triage.settings import LogSource

router = APIRouter(tags=["logs"])

# text/plain is the contract; NDJSON and untyped bodies are the same lines by other names.
ACCEPTED_MEDIA_TYPES = ("text/plain", "application/x-ndjson", "application/octet-stream", "")


class RawLogsAccepted(BaseModel):
    source: str
    lines: int
    records: int
    unparsed: int


def _source(request: Request, name: str) -> LogSource:
    configured = get_runtime(request).settings.log_sources
    source = find_log_source(configured, name)
    if source is not None:
        return source
    names = [s.name for s in configured]
    builtin = ", ".join(n for n in builtin_log_sources() if n not in names)
    if not names:
        raise HTTPException(
            404,
            f"unknown log source {name!r}; built-in sources: {builtin}; no log sources are configured "
            "(add one under log_sources: in the config)",
        )
    raise HTTPException(
        404,
        f"unknown log source {name!r}; configured sources: {', '.join(names)}; built-in sources: {builtin} "
        "(add others under log_sources: in the config)",
    )


def _text(body: bytes, content_type: str) -> str:
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return body.decode(charset, errors="replace")
    except LookupError as exc:
        raise UnsupportedMediaType(f"unknown charset {charset!r}; send UTF-8") from exc


@router.post(
    "/logs/raw",
    response_model=RawLogsAccepted,
    openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}},
    responses={
        404: {"description": "no log source of that name is configured or built in"},
        413: {"description": "body over ingest.max_body_bytes"},
        415: {"description": "not text/plain"},
        429: {"description": "write buffer full; retry after Retry-After seconds"},
        503: {"description": "store failing; retry after Retry-After seconds"},
    },
)
async def post_raw_logs(
    request: Request,
    source: Annotated[
        str,
        Query(
            description=f"a `log_sources` name, or a built-in profile ({', '.join(builtin_log_sources())}) "
            "with no entry; its profile parses the lines"
        ),
    ],
) -> RawLogsAccepted:
    """Newline-separated log lines of one source; each stored as a record, unparseable ones as they are."""
    runtime = get_runtime(request)
    log_source = _source(request, source)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in ACCEPTED_MEDIA_TYPES:
        raise HTTPException(415, f"unsupported Content-Type {content_type!r}: send newline-separated text/plain")
    ingest = runtime.settings.ingest
    try:
        raw = await read_body(request, ingest.max_body_bytes, "send fewer lines")
        body = decompress(raw, request.headers.get("content-encoding"), ingest.max_decompressed_bytes)
        text = _text(body, content_type)
        batch = await run_in_threadpool(ingest_lines, runtime.receiver, log_source, split_lines(text), "raw")
    except PayloadTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except UnsupportedMediaType as exc:
        raise HTTPException(415, str(exc)) from exc
    except DecodeError as exc:
        raise HTTPException(400, str(exc)) from exc
    except Overloaded as exc:
        code = 503 if exc.unavailable else 429
        raise HTTPException(code, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    return RawLogsAccepted(source=source, lines=batch.lines, records=batch.records, unparsed=batch.unparsed)
