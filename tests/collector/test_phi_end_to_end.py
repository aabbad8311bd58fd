"""PHI sent through every input path never reaches any table of the store."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from app.runtime import wal_directory
from collector.redaction import TOKEN
from tests.conftest import LiveServer, server_settings

PHI = {
    "ssn": "078-05-1120",
    "mrn": "MRN00481516",
    "name": "Delacroix",
    "dob": "1961-07-04",
    "phone": "(555)201-7788",
    "email": "maribel.delacroix@example.org",
}


def scan_store(server: LiveServer, needles: list[str]) -> dict[str, list[str]]:
    """Every table of the server's database, dumped as text, searched for each needle."""
    store = server.store
    tables = [
        r[0]
        for r in store.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine NOT IN ('Null', 'MaterializedView', 'View') "
            "AND NOT startsWith(name, '.tmp')"  # a snapshot refresh in progress: the snapshot itself is dumped
        ).result_rows
    ]
    assert "otel_traces" in tables and "otel_logs" in tables
    found: dict[str, list[str]] = {}
    for table in tables:
        dump = store.client.raw_query(f"SELECT * FROM `{table}` FORMAT JSONEachRow").decode()
        for needle in needles:
            if needle in dump or json.dumps(needle)[1:-1] in dump:
                found.setdefault(needle, []).append(table)
    return found


def test_phi_on_every_path_is_redacted_before_storage(
    chdb_path: Path, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="triage")
    server = LiveServer(
        server_settings(
            chdb_path,
            log_sources=[{"name": "mirth", "format": "mirth"}],
            workflows=[
                {
                    "name": "supply",
                    "keys": ["erp.requisition"],
                    "steps": [{"name": "req", "match": {"service": "ehr"}}],
                }
            ],
        )
    ).start()
    try:
        adt = (shared_data / "hl7" / "adt_a01.hl7").read_bytes().decode()
        detail = (
            f"patient: {PHI['name']}, Maribel ssn {PHI['ssn']} {PHI['mrn']} DOB {PHI['dob']} "
            f"call {PHI['phone']} mail {PHI['email']}"
        )
        # Traces over OTLP/HTTP (protobuf) and OTLP/gRPC: attributes, span names, events, status.
        for exporter in (
            HttpSpanExporter(endpoint=f"{server.otlp_http}/v1/traces"),
            GrpcSpanExporter(endpoint=server.otlp_grpc, insecure=True),
        ):
            provider = TracerProvider(resource=Resource.create({"service.name": "ehr", "owner": PHI["email"]}))
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            tracer = provider.get_tracer("phi")
            with tracer.start_as_current_span(
                f"admit {PHI['mrn']}",
                attributes={
                    "erp.requisition": "REQ-2026-004512",
                    "patient.detail": detail,
                    "hl7.message": adt,
                },
            ) as span:
                span.add_event("lookup", {"phone": PHI["phone"]})
            provider.shutdown()
        # Logs over OTLP/HTTP and gRPC: bodies carrying an HL7 message and free text.
        for log_exporter in (
            HttpLogExporter(endpoint=f"{server.otlp_http}/v1/logs"),
            GrpcLogExporter(endpoint=server.otlp_grpc, insecure=True),
        ):
            logs = LoggerProvider(resource=Resource.create({"service.name": "mirth"}))
            logs.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
            logger = logging.getLogger(f"phi.{id(log_exporter)}")
            logger.propagate = False
            handler = LoggingHandler(logger_provider=logs)
            logger.addHandler(handler)
            logger.warning("inbound %s", adt)
            logger.error("mapping failed: %s", detail)
            logs.shutdown()
            logger.removeHandler(handler)
        # OTLP/JSON over HTTP.
        doc = {
            "resourceLogs": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                    "scopeLogs": [
                        {"logRecords": [{"timeUnixNano": str(time.time_ns()), "body": {"stringValue": detail}}]}
                    ],
                }
            ]
        }
        response = httpx.post(f"{server.otlp_http}/v1/logs", json=doc)
        assert response.status_code == 200
        # Raw integration-engine lines: a log4j line with free text, then the HL7 message itself.
        # Dated an hour ago: a fixed date would fall out of raw retention as the calendar moves on.
        stamp = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S,123")
        raw = f"ERROR {stamp} [ADT-Inbound] channel-writer: lookup failed for {detail}\n" + adt.replace("\r", "\n")
        response = httpx.post(
            f"{server.api}/api/v1/logs/raw",
            params={"source": "mirth"},
            content=raw.encode(),
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 200, response.text
        server.flush()

        raw_rows = server.store.query(
            "SELECT Body FROM otel_logs WHERE ResourceAttributes['log.source'] = 'mirth'"
        ).result_rows
        # The HL7 segments continue the log4j line (a multi-line record), PID fields tokenized.
        assert raw_rows and any("[PHI:hl7_pid:" in r[0] for r in raw_rows), raw_rows
        needles = [*PHI.values(), "19610704", "Maribel", "12 Elm St"]
        leaks = scan_store(server, needles)
        assert leaks == {}, f"PHI stored in: {leaks}"
        # Nor on disk beside the store: the write-ahead log holds requests as redacted.
        wal = wal_directory(server.settings)
        segments = list(wal.glob("*.wal"))
        assert segments, f"the write-ahead log is in {wal}"
        on_disk = b"".join(p.read_bytes() for p in segments)
        assert b"[PHI:" in on_disk, "the log holds the requests (tokens in place of PHI)"
        assert [n for n in needles if n.encode() in on_disk] == [], "PHI in the write-ahead log"
        # Nor in what the server logged while taking it all (partial successes, parse errors, ...).
        assert caplog.records, "the server's log was captured"
        assert [n for n in needles if n in caplog.text] == [], "PHI in the server's log"
        rows = server.store.query(
            "SELECT SpanAttributes['erp.requisition'], SpanName FROM otel_traces WHERE ServiceName = 'ehr'"
        ).result_rows
        assert len(rows) == 2
        assert all(r[0] == "REQ-2026-004512" for r in rows), "business keys are allow-listed"
        # The same MRN gives the same token in spans and logs, so correlation still works.
        match = TOKEN.search(rows[0][1])
        assert match and match.group(0).startswith("[PHI:mrn:")
        token = match.group(0)
        assert (
            int(
                server.store.command("SELECT count() FROM otel_logs WHERE position(Body, {t:String}) > 0", {"t": token})
            )
            >= 2
        )
        metrics = httpx.get(f"{server.api}/metrics").text
        assert 'triage_redaction_replacements_total{kind="ssn"}' in metrics
    finally:
        server.stop()
