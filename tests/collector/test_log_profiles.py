"""Log profiles against real log files (../shared/data/logs) and the engines' documented layouts."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.flatten import log_columns
from collector.logs import PARSE_ERROR, parse_batch, parse_lines, split_lines
from collector.logs.timestamps import TimestampParser
from triage.errors import ConfigError
from triage.settings import LogSource, load_settings

HEALTHAPP_PATTERN = r"^(?P<timestamp>[^|]+)\|(?P<component>[^|]*)\|(?P<pid>\d+)\|(?P<message>.*)$"
OPENSTACK_PATTERN = (
    r"^(?P<logfile>\S+) (?P<timestamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (?P<pid>\d+) (?P<severity>[A-Z]+) "
    r"(?P<logger>\S+) \[(?:(?P<request_id>req-[0-9a-f-]+) )?[^\]]*\] (?P<message>.*)$"
)
SEVERITY_NUMBERS = {"INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21}


def rows(source: LogSource, lines: list[str]) -> list[dict[str, Any]]:
    """otel_logs rows, as the pipeline would write them, for these lines."""
    cols = log_columns([parse_lines(source, lines)])
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def sample_lines(shared_data: Path, name: str) -> list[str]:
    return split_lines((shared_data / "logs" / name).read_text("utf-8"))


def structured(shared_data: Path, name: str) -> list[dict[str, str]]:
    with (shared_data / "logs" / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ns(moment: datetime) -> int:
    return int(moment.replace(microsecond=0).timestamp()) * 1_000_000_000 + moment.microsecond * 1000


@pytest.mark.parametrize("profile", ["log4j", "mirth", "mule"])
def test_hadoop_log4j_lines_match_the_datasets_own_parse(shared_data: Path, profile: str) -> None:
    lines = sample_lines(shared_data, "Hadoop_2k.log")
    expected = structured(shared_data, "Hadoop_2k.log_structured.csv")
    got = rows(LogSource(name="hadoop", format=profile), lines)  # type: ignore[arg-type]
    assert len(lines) == len(expected) == len(got) == 2000
    for row, want in zip(got, expected, strict=True):
        when = datetime.strptime(f"{want['Date']} {want['Time']}", "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        assert (row["SeverityText"], row["SeverityNumber"]) == (
            want["Level"],
            SEVERITY_NUMBERS[want["Level"]],
        )
        assert row["Timestamp"] == ns(when), want["LineId"]
        assert row["LogAttributes"]["log.logger"] == want["Component"]
        assert row["LogAttributes"]["thread.name"] == want["Process"]
        assert row["Body"] == want["Content"]
        assert PARSE_ERROR not in row["LogAttributes"]
        assert row["ServiceName"] == "hadoop"
        assert row["ResourceAttributes"] == {"service.name": "hadoop", "log.source": "hadoop"}


def _healthapp_time(text: str) -> int:
    """The dataset's unpadded yyyyMMdd-H:m:s:SSS, read independently of the profile."""
    y, mo, d, h, mi, s, ms = map(int, re.fullmatch(r"(\d{4})(\d\d)(\d\d)-(\d+):(\d+):(\d+):(\d+)", text).groups())  # type: ignore[union-attr]
    return ns(datetime(y, mo, d, h, mi, s, tzinfo=UTC)) + ms * 1_000_000


def test_healthapp_regex_profile_matches_the_datasets_own_parse(shared_data: Path) -> None:
    lines = sample_lines(shared_data, "HealthApp_2k.log")
    expected = structured(shared_data, "HealthApp_2k.log_structured.csv")
    source = LogSource(name="healthapp", format="regex", pattern=HEALTHAPP_PATTERN, service="health-app")
    got = rows(source, lines)
    assert len(lines) == len(expected) == len(got) == 2000
    unpadded = 0
    for row, want in zip(got, expected, strict=True):
        assert row["Timestamp"] == _healthapp_time(want["Time"]), want["LineId"]
        assert row["LogAttributes"] == {"component": want["Component"], "process.pid": want["Pid"]}
        assert row["Body"] == want["Content"]
        assert (row["SeverityText"], row["SeverityNumber"]) == ("", 0)
        assert row["ServiceName"] == "health-app"
        unpadded += bool(re.search(r"-\d:|:\d:|:\d{1,2}$", want["Time"]))
    assert unpadded > 100, "the sample's unpadded times (22:16:0:83) are covered"


def syslog_expectation(line: str) -> tuple[str, str, str | None, str]:
    """host, app, pid, message of an RFC 3164 line, split by hand."""
    host, _, rest = line[16:].partition(" ")
    tag, _, message = rest.lstrip(" ").partition(": ")
    tagged = re.fullmatch(r"(.*?)\[(\d+)\]", tag)
    return host, tagged[1] if tagged else tag, tagged[2] if tagged else None, message


def test_linux_syslog_lines_get_host_app_pid_and_time(shared_data: Path) -> None:
    lines = sample_lines(shared_data, "Linux_2k.log")
    got = rows(LogSource(name="linux", format="syslog"), lines)
    assert len(got) == 2000
    now = datetime.now(UTC)
    with_pid = 0
    for line, row in zip(lines, got, strict=True):
        host, app, pid, message = syslog_expectation(line)
        attrs = row["LogAttributes"]
        assert (attrs["host.name"], attrs["app.name"], attrs.get("process.pid")) == (host, app, pid), line
        assert row["Body"] == message.rstrip()
        stamp = datetime.fromtimestamp(row["Timestamp"] / 1e9, UTC)
        assert stamp.strftime("%b %e %H:%M:%S").replace("  ", " ") == " ".join(line[:15].split())
        assert now - timedelta(days=366) < stamp <= now + timedelta(days=1), "no year in RFC 3164: the latest past one"
        with_pid += pid is not None
    assert with_pid == sum(1 for line in lines if re.search(r"\[\d+\]: ", line))


def test_openstack_lines_with_a_regex_profile(shared_data: Path) -> None:
    lines = sample_lines(shared_data, "OpenStack_2k.log")
    got = rows(LogSource(name="nova", format="regex", pattern=OPENSTACK_PATTERN), lines)
    assert len(got) == 2000
    for line, row in zip(lines, got, strict=True):
        _, date, clock, pid, level, logger = line.split(" ")[:6]
        assert row["Timestamp"] == ns(datetime.fromisoformat(f"{date} {clock}").replace(tzinfo=UTC))
        assert (row["SeverityText"], row["SeverityNumber"]) == (level, SEVERITY_NUMBERS[level])
        assert row["LogAttributes"]["process.pid"] == pid
        assert row["LogAttributes"]["log.logger"] == logger
        request = re.search(r"\[(req-[0-9a-f-]+) ", line)
        assert row["LogAttributes"].get("request.id") == (request[1] if request else None)
        assert PARSE_ERROR not in row["LogAttributes"]


MIRTH_LOG = """\
INFO  2024-03-01 10:15:02.123 [Channel Dispatch Thread on ADT-Inbound (3c6a2f1e-8b7d-4e2a-9c1f-0a1b2c3d4e5f) < pool-1-thread-2] transformer: PO 4500012345 mapped for STM-ICU
ERROR 2024-03-01 10:15:03,456 [Destination Queue Thread 1 on ADT-Inbound (3c6a2f1e-8b7d-4e2a-9c1f-0a1b2c3d4e5f), To ERP (2)] com.mirth.connect.connectors.http.HttpDispatcher: Error connecting to the ERP endpoint
java.net.ConnectException: Connection refused
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\tat com.mirth.connect.connectors.http.HttpDispatcher.send(HttpDispatcher.java:312)
Caused by: java.io.IOException: socket closed
\t... 12 more
[2024-03-01 10:15:04,789]  ERROR  (com.mirth.connect.server.userutil.VMRouter:115): Error routing message to channel id: 9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a
com.mirth.connect.donkey.server.channel.ChannelException:\x20
\tat com.mirth.connect.donkey.server.channel.SourceConnector.dispatchRawMessage(SourceConnector.java:189)
 WARN 2024-03-01 10:15:05.001 [Source Queue Thread 2 on Supplier Sync (11111111-2222-4333-8444-555555555555)] com.mirth.connect.donkey.server.channel.Channel: message id: 176901 already processed
"""


def test_mirth_layouts_channel_thread_and_stack_traces() -> None:
    got = rows(LogSource(name="mirth", format="mirth", service="nextgen-connect"), split_lines(MIRTH_LOG))
    assert len(got) == 4, "stack trace lines join the record before them"
    first, failed, routed, queued = got
    assert first["LogAttributes"] == {
        "thread.name": "Channel Dispatch Thread on ADT-Inbound (3c6a2f1e-8b7d-4e2a-9c1f-0a1b2c3d4e5f) < pool-1-thread-2",
        "log.logger": "transformer",
        "mirth.channel.name": "ADT-Inbound",
        "mirth.channel.id": "3c6a2f1e-8b7d-4e2a-9c1f-0a1b2c3d4e5f",
    }
    assert first["Timestamp"] == ns(datetime(2024, 3, 1, 10, 15, 2, 123000, tzinfo=UTC))
    assert (first["SeverityText"], first["SeverityNumber"], first["Body"]) == (
        "INFO",
        9,
        "PO 4500012345 mapped for STM-ICU",
    )
    assert failed["Body"].startswith("Error connecting to the ERP endpoint\njava.net.ConnectException")
    assert failed["Body"].endswith("\t... 12 more")
    assert failed["LogAttributes"]["exception.type"] == "java.net.ConnectException"
    assert failed["LogAttributes"]["mirth.connector.name"] == "To ERP"
    assert failed["LogAttributes"]["mirth.connector.metadata_id"] == "2"
    assert failed["Timestamp"] == ns(datetime(2024, 3, 1, 10, 15, 3, 456000, tzinfo=UTC))
    assert routed["LogAttributes"]["log.logger"] == "com.mirth.connect.server.userutil.VMRouter"
    assert routed["LogAttributes"]["code.lineno"] == "115"
    assert routed["LogAttributes"]["mirth.channel.id"] == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    assert routed["LogAttributes"]["exception.type"] == "com.mirth.connect.donkey.server.channel.ChannelException"
    assert (routed["SeverityText"], routed["SeverityNumber"]) == ("ERROR", 17)
    assert queued["LogAttributes"]["mirth.channel.name"] == "Supplier Sync"
    assert queued["LogAttributes"]["mirth.message.id"] == "176901"
    assert (queued["SeverityText"], queued["SeverityNumber"]) == ("WARN", 13)
    assert all(row["ServiceName"] == "nextgen-connect" for row in got)


MULE_LOG = """\
INFO  2024-03-01 10:15:02,123 [[MuleRuntime].uber.03: [orders-api].post-order.CPU_INTENSIVE @4a5b] [processor: post-order/processors/0; event: 1-abc] org.mule.runtime.core.internal.processor.LoggerMessageProcessor: PO 4500012345 received
ERROR 2024-03-01 10:15:04,500 [[MuleRuntime].uber.05: [orders-api].post-order.CPU_LITE @77aa12] [processor: post-order/processors/2; event: 1-abc] org.mule.runtime.core.internal.exception.OnErrorPropagateHandler:\x20
********************************************************************************
Message               : HTTP POST on resource 'http://erp:8080/po' failed: Connection refused.
Element               : post-order/processors/2 @ orders-api:orders-api.xml:31 (Request)
Error type            : HTTP:CONNECTIVITY
FlowStack             : at post-order(post-order/processors/2 @ orders-api:orders-api.xml:31 (Request))

  (set debug level logging or '-Dmule.verbose.exceptions=true' for everything)
********************************************************************************
INFO  2024-03-01 10:16:00,000 [[invoice-sync].HTTP_Listener_Configuration.worker.01] org.mule.api.processor.LoggerMessageProcessor: a Mule 3 line
"""


def test_mule_layouts_app_flow_event_and_error_block() -> None:
    got = rows(LogSource(name="mule", format="mule"), split_lines(MULE_LOG))
    assert len(got) == 3
    received, failed, mule3 = got
    assert received["LogAttributes"] == {
        "thread.name": "[MuleRuntime].uber.03: [orders-api].post-order.CPU_INTENSIVE @4a5b",
        "mule.processor.path": "post-order/processors/0",
        "mule.correlation.id": "1-abc",
        "log.logger": "org.mule.runtime.core.internal.processor.LoggerMessageProcessor",
        "mule.app.name": "orders-api",
        "mule.flow.name": "post-order",
    }
    assert received["Body"] == "PO 4500012345 received"
    assert failed["LogAttributes"]["exception.type"] == "HTTP:CONNECTIVITY"
    assert failed["Body"].startswith("*****") and failed["Body"].endswith("*****")
    assert "Error type            : HTTP:CONNECTIVITY" in failed["Body"]
    assert (failed["SeverityText"], failed["SeverityNumber"]) == ("ERROR", 17)
    assert mule3["LogAttributes"]["mule.app.name"] == "invoice-sync"
    assert mule3["Timestamp"] == ns(datetime(2024, 3, 1, 10, 16, tzinfo=UTC))


def test_syslog_rfc5424_and_priorities() -> None:
    lines = [
        '<11>1 2024-03-01T10:15:02.123+01:00 erp-gw01 boomi-atom 4711 PO_FAIL [origin@48577 ip="10.0.0.5"][meta sequenceId="42"] Process PO sync failed',
        "<14>1 2024-03-01T10:15:03Z erp-gw01 camel - - - route started",
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    ]
    first, nil, bsd = rows(LogSource(name="sys", format="syslog"), lines)
    assert first["Timestamp"] == ns(datetime(2024, 3, 1, 9, 15, 2, 123000, tzinfo=UTC))
    assert (first["SeverityText"], first["SeverityNumber"]) == ("err", 17)
    assert first["LogAttributes"] == {
        "host.name": "erp-gw01",
        "app.name": "boomi-atom",
        "process.pid": "4711",
        "syslog.msgid": "PO_FAIL",
        "syslog.facility": "user",
        "syslog.sd.origin@48577.ip": "10.0.0.5",
        "syslog.sd.meta.sequenceId": "42",
    }
    assert first["Body"] == "Process PO sync failed"
    assert nil["LogAttributes"] == {"host.name": "erp-gw01", "app.name": "camel", "syslog.facility": "user"}
    assert (nil["SeverityText"], nil["SeverityNumber"], nil["Body"]) == ("info", 9, "route started")
    assert (bsd["SeverityText"], bsd["SeverityNumber"]) == ("crit", 18)
    assert bsd["LogAttributes"] == {"host.name": "mymachine", "app.name": "su", "syslog.facility": "auth"}


def test_json_lines_log4j2_layout_and_ecs() -> None:
    lines = [
        '{"instant":{"epochSecond":1709288102,"nanoOfSecond":123456789},"thread":"main","level":"ERROR",'
        '"loggerName":"com.example.Erp","message":"PO 4500012345 rejected","thrown":{"name":"java.lang.IllegalStateException",'
        '"message":"over budget"},"contextMap":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}}',
        '{"@timestamp":"2024-03-01T10:15:02.5Z","log.level":"warn","message":{"po":"4500012345"},"trace.id":"0af7651916cd43dd8448eb211c80319c",'
        '"span.id":"b7ad6b7169203331","process.thread.name":"worker-1","retries":3}',
        "not json at all",
    ]
    log4j2, ecs, broken = rows(LogSource(name="json", format="json"), lines)
    assert log4j2["Timestamp"] == 1709288102_123456789
    assert (log4j2["SeverityText"], log4j2["SeverityNumber"], log4j2["Body"]) == (
        "ERROR",
        17,
        "PO 4500012345 rejected",
    )
    assert log4j2["LogAttributes"]["log.logger"] == "com.example.Erp"
    assert log4j2["LogAttributes"]["thread.name"] == "main"
    assert log4j2["LogAttributes"]["exception.type"] == "java.lang.IllegalStateException"
    assert (log4j2["TraceId"], log4j2["SpanId"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert ecs["Timestamp"] == ns(datetime(2024, 3, 1, 10, 15, 2, 500000, tzinfo=UTC))
    assert (ecs["SeverityText"], ecs["SeverityNumber"], ecs["Body"]) == ("warn", 13, '{"po":"4500012345"}')
    assert (ecs["TraceId"], ecs["SpanId"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert ecs["LogAttributes"] == {"thread.name": "worker-1", "retries": "3"}
    assert broken["Body"] == "not json at all"
    assert broken["LogAttributes"] == {PARSE_ERROR: "not a JSON object"}


def test_unparseable_lines_are_kept_as_they_are() -> None:
    lines = [
        "\tat com.example.Orphan.run(Orphan.java:1)  ",
        "garbage \x00 with a nul",
        "INFO  2024-03-01 10:15:02,123 [t] a.B: ok",
    ]
    batch = parse_batch(LogSource(name="m", format="mirth"), lines)
    assert (batch.lines, batch.records, batch.unparsed) == (3, 3, 2)
    got = rows(LogSource(name="m", format="mirth"), lines)
    assert [r["Body"] for r in got[:2]] == lines[:2], "stored byte for byte, trailing blanks included"
    for row in got[:2]:
        assert row["LogAttributes"] == {PARSE_ERROR: "no pattern of log profile 'mirth' matched this line"}
        assert (row["SeverityNumber"], row["Timestamp"]) == (0, row["ObservedTimestamp"])
    assert PARSE_ERROR not in got[2]["LogAttributes"]


def test_multiline_only_where_the_profile_allows_it() -> None:
    lines = [
        "Jun 14 15:16:01 combo app[1]: first",
        "  indented follow-up",
        "Jun 14 15:16:02 combo app[1]: second",
    ]
    got = rows(LogSource(name="s", format="syslog"), lines)
    assert [PARSE_ERROR in r["LogAttributes"] for r in got] == [False, True, False]
    joined = rows(LogSource(name="s", format="syslog", multiline=True), lines)
    assert [r["Body"] for r in joined] == ["first\n  indented follow-up", "second"]
    regex = LogSource(name="r", format="regex", pattern=r"^(?P<severity>[A-Z]+): (?P<message>.*)$", multiline=True)
    assert [r["Body"] for r in rows(regex, ["ERROR: boom", "  at x", "", "INFO: ok"])] == [
        "boom\n  at x",
        "ok",
    ]


def test_trace_context_from_w3c_traceparent_and_key_values() -> None:
    lines = [
        "INFO  2024-03-01 10:15:02,123 [http-1] com.example.Po: sent traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "INFO  2024-03-01 10:15:02,124 [http-1] com.example.Po: trace_id=0AF7651916CD43DD8448EB211C80319C span_id=B7AD6B7169203331 trace_flags=00",
        "INFO  2024-03-01 10:15:02,125 [http-1] com.example.Po: no context, 00-00000000000000000000000000000000-0000000000000000-00",
    ]
    w3c, kv, zeros = rows(LogSource(name="m", format="mirth"), lines)
    orphan = "an unparsed line still carries 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    (unparsed,) = rows(LogSource(name="m", format="mirth"), [orphan])
    assert (w3c["TraceId"], w3c["SpanId"], w3c["TraceFlags"]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        1,
    )
    assert (kv["TraceId"], kv["SpanId"], kv["TraceFlags"]) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        0,
    )
    assert (zeros["TraceId"], zeros["SpanId"]) == ("", "")
    assert unparsed["TraceId"] == "0af7651916cd43dd8448eb211c80319c" and PARSE_ERROR in unparsed["LogAttributes"]


def test_timestamp_layouts() -> None:
    utc = TimestampParser()
    assert utc.parse("20171224-0:28:0:83") == ns(datetime(2017, 12, 24, 0, 28, 0, tzinfo=UTC)) + 83_000_000
    assert (
        utc.parse("2024-03-01T10:15:02.123456789+01:00") == ns(datetime(2024, 3, 1, 9, 15, 2, tzinfo=UTC)) + 123456789
    )
    assert utc.parse("01 Mar 2024 10:15:02,5") == ns(datetime(2024, 3, 1, 10, 15, 2, 500000, tzinfo=UTC))
    assert utc.parse("1709288102123") == 1709288102123 * 1_000_000
    assert utc.parse("yesterday") is None
    berlin = TimestampParser("Europe/Berlin")
    assert berlin.parse("2024-07-01 12:00:00") == ns(datetime(2024, 7, 1, 10, tzinfo=UTC))
    custom = TimestampParser(strptime_format="%d.%m.%Y %H:%M:%S")
    assert custom.parse("01.03.2024 10:15:02") == ns(datetime(2024, 3, 1, 10, 15, 2, tzinfo=UTC))
    feb = TimestampParser(now=lambda: datetime(2025, 1, 2, tzinfo=UTC))
    assert feb.parse("Dec 31 23:59:59") == ns(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)), "last year's December"


def test_log_source_settings_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"log_sources\[0\] \(x\)\.timezone: unknown timezone 'Mars/Olympus'"):
        load_settings(None, {"log_sources": [{"name": "x", "format": "mirth", "timezone": "Mars/Olympus"}]}, environ={})
    with pytest.raises(ConfigError, match="a regex log source needs `pattern`"):
        load_settings(None, {"log_sources": [{"name": "x", "format": "regex"}]}, environ={})
    with pytest.raises(ConfigError, match="pattern is not a valid regular expression"):
        load_settings(None, {"log_sources": [{"name": "x", "format": "regex", "pattern": "(?P<x"}]}, environ={})
    settings = load_settings(None, {"log_sources": [{"name": "mirth", "format": "mirth"}]}, environ={})
    assert settings.log_sources[0].multiline is None and settings.log_sources[0].path is None
