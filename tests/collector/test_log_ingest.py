"""Raw log lines into otel_logs through the receiver: the raw endpoint and file tailing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.logs import PARSE_ERROR, ingest_lines, split_lines, tail_sources
from collector.pipeline import Pipeline
from collector.receiver import Receiver
from tests.collector.test_log_profiles import (
    HEALTHAPP_PATTERN,
    OPENSTACK_PATTERN,
    structured,
    syslog_expectation,
)
from tests.conftest import LiveServer, server_settings, unique_dsn
from triage.errors import Overloaded
from triage.settings import Ingest, LogSource, Settings
from triage.store import Store

SAMPLES = {
    "Hadoop_2k.log": {"format": "log4j"},
    "Linux_2k.log": {"format": "syslog"},
    "OpenStack_2k.log": {"format": "regex", "pattern": OPENSTACK_PATTERN},
    "HealthApp_2k.log": {"format": "regex", "pattern": HEALTHAPP_PATTERN},
}
POLL = {"poll_interval": 0.05, "flush_after": 0.2}


@dataclasses.dataclass
class Runtime:
    """What the log collector runs on: settings, the store, the write pipeline and its receiver."""

    settings: Settings
    store: Store
    pipeline: Pipeline
    receiver: Receiver


@pytest.fixture(scope="module")
def runtime(chdb_path: Path) -> Iterator[Runtime]:
    """A runtime whose raw retention keeps the samples' 2015 lines, whatever today's date."""
    store = Store(unique_dsn(chdb_path), raw_ttl_days=25000)
    store.migrate()
    pipeline = Pipeline(store, Ingest(batch_max_delay=0.05))
    pipeline.start()
    settings = server_settings(chdb_path, store=store.dsn)
    yield Runtime(settings, store, pipeline, Receiver(pipeline))
    pipeline.shutdown()
    store.command(f"DROP DATABASE IF EXISTS `{store.target.database}`")


def count(runtime: Runtime, source: str, where: str = "1") -> int:
    assert runtime.pipeline.flush(10)
    sql = f"SELECT count() FROM otel_logs WHERE ResourceAttributes['log.source'] = {{s:String}} AND {where}"
    return int(runtime.store.command(sql, {"s": source}))


def bodies(runtime: Runtime, source: str) -> list[str]:
    assert runtime.pipeline.flush(10)
    sql = "SELECT Body FROM otel_logs WHERE ResourceAttributes['log.source'] = {s:String} ORDER BY Timestamp, Body"
    return [r[0] for r in runtime.store.query(sql, {"s": source}).result_rows]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_line_lands(runtime: Runtime, shared_data: Path, name: str) -> None:
    source = LogSource(name=f"sample-{name.split('_')[0].lower()}", **SAMPLES[name])
    lines = split_lines((shared_data / "logs" / name).read_text("utf-8"))
    batch = ingest_lines(runtime.receiver, source, lines, "raw")
    assert (batch.lines, batch.records, batch.unparsed) == (2000, 2000, 0)
    assert count(runtime, source.name) == 2000
    assert count(runtime, source.name, f"mapContains(LogAttributes, '{PARSE_ERROR}')") == 0
    assert count(runtime, source.name, "ServiceName = {s:String} AND Timestamp > '2015-01-01'") == 2000
    assert sorted(bodies(runtime, source.name)) == sorted(expected_messages(shared_data, name, lines))


def expected_messages(shared_data: Path, name: str, lines: list[str]) -> list[str]:
    """Each line's message as the dataset's authors parsed it, or as split by hand."""
    csv_name = f"{name}_structured.csv"
    if (shared_data / "logs" / csv_name).exists():
        return [r["Content"] for r in structured(shared_data, csv_name)]
    if name.startswith("Linux"):
        return [syslog_expectation(line)[3].rstrip() for line in lines]
    return [line.split("] ", 1)[1].rstrip() for line in lines]


@contextlib.contextmanager
def raw_api(server: LiveServer) -> Iterator[httpx.Client]:
    """The live server's own API (where `triage serve` mounts the raw-logs router)."""
    with httpx.Client(base_url=server.api, timeout=30) as client:
        yield client


@pytest.fixture
def raw_server(chdb_path: Path) -> Iterator[LiveServer]:
    sources = [
        {"name": "mirth", "format": "mirth", "service": "nextgen-connect"},
        {"name": "healthapp", "format": "regex", "pattern": HEALTHAPP_PATTERN},
    ]
    server = LiveServer(server_settings(chdb_path, log_sources=sources, retention={"raw_days": 25000})).start()
    yield server
    server.stop()
    server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def test_raw_endpoint(raw_server: LiveServer, shared_data: Path) -> None:
    with raw_api(raw_server) as api:
        _check_raw_endpoint(api, raw_server, shared_data)


def _check_raw_endpoint(api: httpx.Client, raw_server: LiveServer, shared_data: Path) -> None:
    store = raw_server.store
    sample = (shared_data / "logs" / "HealthApp_2k.log").read_bytes()
    response = api.post(
        "/api/v1/logs/raw",
        params={"source": "healthapp"},
        content=sample,
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"source": "healthapp", "lines": 2000, "records": 2000, "unparsed": 0}
    zipped = api.post(
        "/api/v1/logs/raw?source=healthapp",
        content=gzip.compress(b"20240301-10:15:2:7|Step_LSC|42|gzip works\n"),
        headers={"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"},
    )
    assert zipped.json()["records"] == 1
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    mirth = (
        f"INFO  {now} [Channel Dispatch Thread on ADT-Inbound (3c6a2f1e-8b7d-4e2a-9c1f-0a1b2c3d4e5f)] transformer: "
        "PO 4500012345 sent traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
        "\tat com.example.Continued(Continued.java:1)\r\n"
    )
    posted = api.post(
        "/api/v1/logs/raw?source=mirth",
        content=f"not a log4j line\n{mirth}",
        headers={"Content-Type": "text/plain"},
    )
    assert posted.json() == {"source": "mirth", "lines": 3, "records": 2, "unparsed": 1}
    raw_server.flush()
    assert int(store.command("SELECT count() FROM otel_logs WHERE ServiceName = 'healthapp'")) == 2001
    rows = store.query(
        "SELECT Body, TraceId, SpanId, SeverityNumber, LogAttributes FROM otel_logs WHERE ServiceName = 'nextgen-connect' "
        "ORDER BY Timestamp"
    ).result_rows
    by_body = {r[0].split("\n")[0]: r for r in rows}
    unparsed = by_body["not a log4j line"]
    assert unparsed[4] == {PARSE_ERROR: "no pattern of log profile 'mirth' matched this line"}
    traced = by_body["PO 4500012345 sent traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
    assert traced[1:4] == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 9)
    assert traced[0].endswith("\n\tat com.example.Continued(Continued.java:1)")
    assert traced[4]["mirth.channel.name"] == "ADT-Inbound"

    unknown = api.post("/api/v1/logs/raw?source=boomi", content=b"x\n", headers={"Content-Type": "text/plain"})
    assert unknown.status_code == 404
    assert (
        unknown.json()["detail"]
        == "unknown log source 'boomi'; configured sources: mirth, healthapp; built-in sources: json, log4j, mule, "
        "syslog (add others under log_sources: in the config)"
    )
    wrong_type = api.post("/api/v1/logs/raw?source=mirth", content=b"{}", headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415 and "text/plain" in wrong_type.json()["detail"]
    assert api.post("/api/v1/logs/raw", content=b"x\n").status_code == 422, "source is required"
    spec = api.get("/openapi.json").json()["paths"]["/api/v1/logs/raw"]["post"]
    assert "text/plain" in spec["requestBody"]["content"]


# Built-in sources with no `log_sources:` entry, fed real lines: the loghub Hadoop file is the log4j
# layout Mirth Connect and Mule runtimes write; the json lines are log4j2 JsonLayout objects made from
# the dataset authors' own parse of the same file.
BUILTIN_SAMPLES = {
    "log4j": "Hadoop_2k.log",
    "mirth": "Hadoop_2k.log",
    "mule": "Hadoop_2k.log",
    "syslog": "Linux_2k.log",
}
HADOOP_FIRST = ("main", "org.apache.hadoop.mapreduce.v2.app.MRAppMaster")


@pytest.fixture(scope="module")
def builtin_server(chdb_path: Path) -> Iterator[LiveServer]:
    """A server with no log_sources at all, whose raw retention keeps the samples' 2015 lines."""
    server = LiveServer(server_settings(chdb_path, retention={"raw_days": 25000})).start()
    yield server
    server.stop()
    server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def json_lines(shared_data: Path) -> list[str]:
    rows = structured(shared_data, "Hadoop_2k.log_structured.csv")
    return [
        json.dumps(
            {
                "timestamp": f"{r['Date']} {r['Time']}",
                "level": r["Level"],
                "thread": r["Process"],
                "loggerName": r["Component"],
                "message": r["Content"],
            }
        )
        for r in rows
    ]


@pytest.mark.parametrize("source", [*BUILTIN_SAMPLES, "json"])
def test_builtin_sources_need_no_configuration(builtin_server: LiveServer, shared_data: Path, source: str) -> None:
    if source == "json":
        name, lines = "Hadoop_2k.log", json_lines(shared_data)
    else:
        name = BUILTIN_SAMPLES[source]
        lines = split_lines((shared_data / "logs" / name).read_text("utf-8"))
    with raw_api(builtin_server) as api:
        response = api.post(
            "/api/v1/logs/raw",
            params={"source": source},
            content="\n".join(lines).encode(),
            headers={"Content-Type": "text/plain"},
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"source": source, "lines": 2000, "records": 2000, "unparsed": 0}
    builtin_server.flush()
    store = builtin_server.store
    mine = "ResourceAttributes['log.source'] = {s:String}"
    assert int(store.command(f"SELECT count() FROM otel_logs WHERE {mine}", {"s": source})) == 2000
    rows = store.query(
        f"SELECT ServiceName, ScopeAttributes['log.profile'], Timestamp, LogAttributes FROM otel_logs WHERE {mine} "
        "ORDER BY Timestamp LIMIT 1",
        {"s": source},
    ).result_rows
    service, profile, first_at, attributes = rows[0]
    assert (service, profile) == (source, source), "a built-in source is its own service.name and profile"
    assert PARSE_ERROR not in attributes
    if name.startswith("Hadoop"):
        assert first_at == datetime(2015, 10, 18, 18, 1, 47, 978000, tzinfo=UTC)
        assert (attributes["thread.name"], attributes["log.logger"]) == HADOOP_FIRST
    else:
        assert attributes["host.name"] == "combo" and "app.name" in attributes
    body_sql = f"SELECT Body FROM otel_logs WHERE {mine}"
    got = sorted(r[0] for r in store.query(body_sql, {"s": source}).result_rows)
    # Redaction runs on built-in sources as on any other (Linux_2k names a build host's e-mail address).
    assert builtin_server.runtime is not None and builtin_server.runtime.receiver.redactor is not None
    redact = builtin_server.runtime.receiver.redactor.redact_text
    assert got == sorted(redact(m) for m in expected_messages(shared_data, name, lines))
    assert (source == "syslog") == any("[PHI:email:" in body for body in got)


def test_unknown_sources_are_refused_naming_the_builtin_ones(builtin_server: LiveServer) -> None:
    with raw_api(builtin_server) as api:
        for name in ("boomi", "regex", "MIRTH"):
            unknown = api.post("/api/v1/logs/raw", params={"source": name}, content=b"x\n")
            assert unknown.status_code == 404
            assert unknown.json()["detail"] == (
                f"unknown log source {name!r}; built-in sources: json, log4j, mirth, mule, syslog; "
                "no log sources are configured (add one under log_sources: in the config)"
            )
    store = builtin_server.store
    assert int(store.command("SELECT count() FROM otel_logs WHERE Body = 'x'")) == 0


class Tail:
    """tail_sources running on its own event loop in a thread, as `triage serve` runs it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            rt = self.runtime
            await tail_sources(rt.settings.log_sources, rt.receiver, rt.store, self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> Tail:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive() and self.error is None, self.error


def tailing(runtime: Runtime, **source: Any) -> tuple[Runtime, LogSource]:
    log_source = LogSource(**{**POLL, **source})
    settings = runtime.settings.model_copy(update={"log_sources": [log_source]})
    return dataclasses.replace(runtime, settings=settings), log_source


def wait_for(runtime: Runtime, source: str, n: int, timeout: float = 10.0) -> int:
    """The row count once it reaches n (or the timeout), after a few more polls to catch extras."""
    deadline = time.monotonic() + timeout
    while count(runtime, source) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return count(runtime, source)


def lines(tag: str, n: int, start: int = 0) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return "".join(f"INFO  {now} [worker-1] com.example.Erp: {tag} line {i}\n" for i in range(start, start + n))


def messages(*tagged: tuple[str, int]) -> list[str]:
    """The messages of the `lines(tag, n)` written for each (tag, n), sorted."""
    return sorted(f"{tag} line {i}" for tag, n in tagged for i in range(n))


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def test_tail_a_sample_file_whose_last_line_has_no_newline(runtime: Runtime, shared_data: Path, tmp_path: Path) -> None:
    shutil.copy(shared_data / "logs" / "Linux_2k.log", tmp_path / "messages")
    rt, source = tailing(runtime, name="tail-linux", format="syslog", path=str(tmp_path / "mess*"))
    with Tail(rt):
        assert wait_for(rt, source.name, 2000) == 2000
    attrs = rt.store.query(
        "SELECT DISTINCT LogAttributes['log.file.path'], LogAttributes['host.name'] FROM otel_logs "
        "WHERE ResourceAttributes['log.source'] = 'tail-linux'"
    ).result_rows
    assert attrs == [(str(tmp_path / "messages"), "combo")]


def test_tail_rotation_by_rename_and_recreate(runtime: Runtime, tmp_path: Path) -> None:
    log_file = tmp_path / "mirth.log"
    log_file.write_text(lines("before", 50))
    rt, source = tailing(runtime, name="tail-rename", format="mirth", path=str(tmp_path / "mirth.log"))
    with Tail(rt):
        assert wait_for(rt, source.name, 50) == 50
        log_file.rename(tmp_path / "mirth.log.1")
        append(tmp_path / "mirth.log.1", lines("late", 5))  # the writer still had the old file open
        log_file.write_text(lines("after", 20))
        assert wait_for(rt, source.name, 75) == 75
        append(log_file, lines("after", 5, start=20))
        assert wait_for(rt, source.name, 80) == 80
    assert sorted(bodies(rt, source.name)) == messages(("before", 50), ("late", 5), ("after", 25))


def test_tail_rotation_by_copytruncate(runtime: Runtime, tmp_path: Path) -> None:
    log_file = tmp_path / "mule.log"
    log_file.write_text(lines("first", 40))
    rt, source = tailing(runtime, name="tail-truncate", format="log4j", path=str(log_file))
    with Tail(rt):
        assert wait_for(rt, source.name, 40) == 40
        shutil.copy(log_file, tmp_path / "mule.log.1")
        with log_file.open("r+") as f:
            f.truncate(0)
        append(log_file, lines("second", 3))  # shorter than before: the size gives it away
        assert wait_for(rt, source.name, 43) == 43
        shutil.copy(log_file, tmp_path / "mule.log.2")
        log_file.write_text(lines("third-round-with-longer-lines", 60))  # longer: the first bytes give it away
        assert wait_for(rt, source.name, 103) == 103
    assert sorted(bodies(rt, source.name)) == messages(
        ("first", 40), ("second", 3), ("third-round-with-longer-lines", 60)
    )


def test_tail_restart_neither_rereads_nor_skips(runtime: Runtime, tmp_path: Path) -> None:
    log_file = tmp_path / "engine.log"
    log_file.write_text(lines("one", 30))
    rt, source = tailing(runtime, name="tail-restart", format="mirth", path=str(tmp_path / "*.log"), flush_after=30)
    with Tail(rt):
        # flush_after 30 s: the last entry stays pending (a stack trace may follow), so 29 land.
        assert wait_for(rt, source.name, 29) == 29
    append(log_file, "java.lang.IllegalStateException: late continuation\n" + lines("two", 10))
    with Tail(rt):
        assert wait_for(rt, source.name, 39) == 39
    rt_quick, _ = tailing(runtime, name="tail-restart", format="mirth", path=str(tmp_path / "*.log"))
    append(log_file, "INFO  2024-03-01 10:15:02,123 [w] a.B: unterminated last line")
    with Tail(rt_quick):
        assert wait_for(rt_quick, source.name, 41) == 41
    with Tail(rt_quick):
        assert wait_for(rt_quick, source.name, 41, timeout=0.5) == 41, "nothing is read twice"
    got = bodies(rt, source.name)
    assert sorted(got) == sorted(
        [f"one line {i}" for i in range(29)]
        + ["one line 29\njava.lang.IllegalStateException: late continuation"]
        + [f"two line {i}" for i in range(10)]
        + ["unterminated last line"]
    )
    assert count(rt, source.name, "LogAttributes['exception.type'] = 'java.lang.IllegalStateException'") == 1
    saved = rt.store.query(
        "SELECT Path, Offset FROM log_tail_positions FINAL WHERE Source = 'tail-restart'"
    ).result_rows
    assert saved == [(str(log_file), os.path.getsize(log_file))]


def test_tail_start_at_end_skips_what_was_there(runtime: Runtime, tmp_path: Path) -> None:
    log_file = tmp_path / "boomi.log"
    log_file.write_text(lines("old", 10))
    rt, source = tailing(runtime, name="tail-end", format="log4j", path=str(log_file), start_at="end")
    with Tail(rt):
        time.sleep(0.3)
        append(log_file, lines("new", 4))
        assert wait_for(rt, source.name, 4) == 4
    assert sorted(bodies(rt, source.name)) == [f"new line {i}" for i in range(4)]


class RefusingOnce(Receiver):
    """The real receiver, refusing its first request as a full write buffer does."""

    def __init__(self, inner: Receiver) -> None:
        super().__init__(inner.pipeline)
        self.inner = inner
        self.refused = 0

    def accept_message(self, signal: Any, message: Any, transport: str) -> Any:
        if not self.refused:
            self.refused += 1
            raise Overloaded("write buffer full (test)", retry_after=1)
        return self.inner.accept_message(signal, message, transport)


def test_tail_rewinds_when_the_receiver_refuses(runtime: Runtime, tmp_path: Path) -> None:
    log_file = tmp_path / "camel.log"
    log_file.write_text(lines("kept", 25))
    rt, source = tailing(runtime, name="tail-refused", format="log4j", path=str(log_file))
    refusing = RefusingOnce(runtime.receiver)
    with Tail(dataclasses.replace(rt, receiver=refusing)):
        assert wait_for(rt, source.name, 25) == 25
    assert refusing.refused == 1
    assert sorted(bodies(rt, source.name)) == sorted(f"kept line {i}" for i in range(25))
