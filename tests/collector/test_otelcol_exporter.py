"""Rows written by the OpenTelemetry Collector's ClickHouse exporter (otelcol-contrib `clickhouse`,
`create_schema: false`) straight into Triage's tables: accepted as they are, read back with the
exporter's own columns, and correlated into business transactions like rows Triage wrote itself.

No otelcol binary or ClickHouse server runs here: the rows are inserted into the embedded store with
the exporter's own INSERT column lists, in the exporter's order and with the values it binds.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.flatten import METRIC_TABLES
from correlator import Correlator, TransactionFilter, list_transactions
from tests.workflows import FACILITIES, PO_KEY_PATTERNS, PO_KEYS, budget_approval, po_sent, procure_to_pay
from triage.settings import load_settings
from triage.store import Store
from triage.vocabulary import CauseKind, State

REPO = Path(__file__).resolve().parents[2]
OTELCOL_CONFIG = REPO / "deploy" / "otelcol" / "otelcol.yaml"
OTELCOL_README = REPO / "deploy" / "otelcol" / "README.md"

# open-telemetry/opentelemetry-collector-contrib, exporter/clickhouseexporter/internal/sqltemplates/traces_insert.sql
# (exporter_traces.go binds, in this order: start time, hex ids, trace state, name, span.Kind().String(),
# service.name, resource attributes, scope name and version, span attributes, duration in ns,
# status.Code().String(), status message, events, links).
TRACES_INSERT = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)
# .../internal/sqltemplates/logs_insert.sql; exporter_logs.go appends EventName when the table has
# that column (detectSchemaFeatures), as Triage's has. Timestamp is the record's time, or its observed
# time when it has none; ObservedTimestamp itself is never written.
LOGS_INSERT = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
    "EventName",
)
# .../internal/sql_templates/metrics_{gauge,sum,histogram}_insert.sql and
# .../internal/sqltemplates/metrics_{exp_histogram,summary}_insert.sql.
_METRIC_HEAD = (
    "ResourceAttributes",
    "ResourceSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "ScopeDroppedAttrCount",
    "ScopeSchemaUrl",
    "ServiceName",
    "MetricName",
    "MetricDescription",
    "MetricUnit",
    "Attributes",
    "StartTimeUnix",
    "TimeUnix",
)
_EXEMPLARS = (
    "Exemplars.FilteredAttributes",
    "Exemplars.TimeUnix",
    "Exemplars.Value",
    "Exemplars.SpanId",
    "Exemplars.TraceId",
)
METRICS_INSERT: dict[str, tuple[str, ...]] = {
    "gauge": (*_METRIC_HEAD, "Value", "Flags", *_EXEMPLARS),
    "sum": (*_METRIC_HEAD, "Value", "Flags", *_EXEMPLARS, "AggregationTemporality", "IsMonotonic"),
    "histogram": (
        *_METRIC_HEAD,
        *("Count", "Sum", "BucketCounts", "ExplicitBounds"),
        *_EXEMPLARS,
        *("Flags", "Min", "Max", "AggregationTemporality"),
    ),
    "exponential_histogram": (
        *_METRIC_HEAD,
        *("Count", "Sum", "Scale", "ZeroCount", "PositiveOffset", "PositiveBucketCounts"),
        *("NegativeOffset", "NegativeBucketCounts"),
        *_EXEMPLARS,
        *("Flags", "Min", "Max", "AggregationTemporality"),
    ),
    "summary": (*_METRIC_HEAD, "Count", "Sum", "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value", "Flags"),
}


def hex_id(n: int) -> str:
    return uuid.uuid4().hex[: n * 2]


def span_row(
    at: datetime,
    service: str,
    name: str,
    attributes: dict[str, str],
    kind: str = "Server",
    trace_id: str | None = None,
) -> list[Any]:
    """One span as the exporter binds it (TRACES_INSERT order)."""
    return [
        at,
        trace_id or hex_id(16),
        hex_id(8),
        "",
        "",
        name,
        kind,
        service,
        {"service.name": service, "host.name": "otelcol-gw-1"},
        "io.opentelemetry.erp",
        "1.4.0",
        attributes,
        25_000_000,
        "Unset",
        "",
        [at + timedelta(milliseconds=5)],
        ["po.validated"],
        [{"po.lines": "3"}],
        [],
        [],
        [],
        [],
    ]


def log_row(at: datetime, service: str, body: str, trace_id: str = "") -> list[Any]:
    """One log record as the exporter binds it (LOGS_INSERT order)."""
    return [
        at,
        trace_id,
        hex_id(8) if trace_id else "",
        1 if trace_id else 0,
        "INFO",
        9,
        service,
        body,
        "",
        {"service.name": service},
        "",
        "mirth.channel",
        "",
        {},
        {"mirth.channel.name": "PO-Outbound"},
        "",
    ]


@pytest.fixture
def estate(store: Store) -> dict[str, Any]:
    """Three purchase orders, written only by the exporter: sent, overdue at approval, just raised."""
    now = datetime.now(UTC)
    sent, overdue, fresh = "4500000001", "4500000002", "4500000003"

    def requisition(po: str, facility: str, at: datetime) -> list[Any]:
        attrs = {"erp.po_number": po, "facility.id": facility, "erp.amount": "182000"}
        return span_row(at, "erp-procurement", "POST /requisitions", attrs)

    spans = [
        requisition(sent, "STM-ICU", now - timedelta(minutes=40)),
        span_row(now - timedelta(minutes=20), "approval-saas", "approve", {"po.number": sent}),
        requisition(overdue, "STM-ICU", now - timedelta(hours=3)),
        requisition(fresh, "CLN-04", now - timedelta(minutes=5)),
    ]
    logs = [
        log_row(now - timedelta(minutes=10), "nextgen-connect", f"PO {sent} sent to supplier portal"),
        log_row(now - timedelta(minutes=4), "erp-procurement", f"PO {fresh} queued", trace_id=spans[3][1]),
    ]
    store.insert("otel_traces", spans, TRACES_INSERT)
    store.insert("otel_logs", logs, LOGS_INSERT)
    return {"now": now, "sent": sent, "overdue": overdue, "fresh": fresh, "spans": spans}


def settings_for(store: Store) -> Any:
    workflow = procure_to_pay(
        budget_approval(),
        po_sent({"log_pattern": "sent to supplier", "service": "nextgen-connect"}),
        keys=PO_KEYS,
        key_patterns=PO_KEY_PATTERNS,
    )
    values = {
        "store": store.dsn,
        "facilities": FACILITIES,
        "workflows": [workflow],
        "correlation": {"enabled": False, "settle": 0.1},
    }
    return load_settings(None, values, environ={})


def test_exporter_spans_read_back_with_the_exporters_alias_columns(store: Store, estate: dict[str, Any]) -> None:
    trace_id = estate["spans"][0][1]
    row = store.query(
        "SELECT SpanAttributeItems, ResourceAttributeItems, TriageIngestedAt, TriageRequest, SpanKind, "
        "`Events.Name` FROM otel_traces WHERE TraceId = {t:String}",
        {"t": trace_id},
    ).result_rows[0]
    span_items, resource_items, ingested, request, kind, events = row
    assert sorted(span_items) == ["erp.amount=182000", "erp.po_number=4500000001", "facility.id=STM-ICU"]
    assert sorted(resource_items) == ["host.name=otelcol-gw-1", "service.name=erp-procurement"]
    assert abs(ingested - estate["now"]) < timedelta(minutes=1), "TriageIngestedAt defaults to the insert time"
    assert (request, kind, events) == (0, "Server", ["po.validated"])
    # The query ClickStack/HyperDX issues for an attribute filter on the exporter's schema.
    hits = store.command(
        "SELECT count() FROM otel_traces WHERE has(SpanAttributeItems, {item:String})",
        {"item": f"erp.po_number={estate['overdue']}"},
    )
    assert int(hits) == 1
    # The trace-id lookup table is filled by Triage's own view, whoever wrote the span.
    assert int(store.command("SELECT count() FROM otel_traces_trace_id_ts WHERE TraceId = {t:String}", {"t": trace_id}))


def test_exporter_logs_get_an_observed_time(store: Store, estate: dict[str, Any]) -> None:
    rows = store.query(
        "SELECT Body, Timestamp, ObservedTimestamp, TimestampTime, TriageIngestedAt, TriageRequest FROM otel_logs "
        "ORDER BY Timestamp"
    ).result_rows
    assert len(rows) == 2
    for body, at, observed, at_second, ingested, request in rows:
        assert observed.year > 1970, f"{body!r}: ObservedTimestamp read {observed}"
        assert abs(observed - estate["now"]) < timedelta(minutes=1), "observed = when the row reached the store"
        assert observed >= at and at_second == at.replace(microsecond=0)
        assert abs(ingested - estate["now"]) < timedelta(minutes=1) and request == 0


def test_the_correlator_judges_what_the_exporter_wrote(store: Store, estate: dict[str, Any]) -> None:
    correlator = Correlator(store, settings_for(store))
    time.sleep(0.3)  # past correlation.settle: the rows' TriageIngestedAt falls inside the window
    cycle = correlator.run_once()
    assert cycle.touched_traces >= 4 and cycle.events >= 5
    first = {t.key: t for t in list_transactions(store, TransactionFilter(workflow="procure_to_pay"))}
    assert set(first) == {estate["sent"], estate["overdue"], estate["fresh"]}
    # The overdue PO's spans arrived hours after their time: late data is judged once it stops arriving
    # (docs/correlation.md, "Late data"), so the first cycle holds it and the next one judges it.
    assert first[estate["overdue"]].state == State.IN_PROGRESS
    correlator.run_once()
    found = {t.key: t for t in list_transactions(store, TransactionFilter(workflow="procure_to_pay"))}

    sent = found[estate["sent"]]
    assert (sent.state, sent.current_step, sent.facility_name) == (State.COMPLETED, "po_sent", "St. Mary's ICU")
    assert sent.value == 182000.0

    overdue = found[estate["overdue"]]
    assert overdue.state == State.STALLED and overdue.cause is not None
    assert (overdue.cause.kind, overdue.cause.component) == (CauseKind.AWAITING_APPROVAL, "approval-saas")
    assert overdue.criticality == "critical"

    fresh = found[estate["fresh"]]
    assert (fresh.state, fresh.next_step) == (State.IN_PROGRESS, "budget_approval")
    assert fresh.facility_name == "Eastside Clinic"
    # The watermark moved past the exporter's rows, and a cycle over them again (its overlap) changes nothing.
    assert correlator.watermark() > estate["now"]
    correlator.run_once()
    again = {t.key: t.state for t in list_transactions(store, TransactionFilter(workflow="procure_to_pay"))}
    assert again == {key: t.state for key, t in found.items()}


def _metric_row(kind: str, at: datetime) -> list[Any]:
    head = [
        {"service.name": "kafka-exporter"},
        "",
        "otelcol/prometheusreceiver",
        "0.162.0",
        {},
        0,
        "",
        "kafka-exporter",
        f"kafka_consumergroup_lag_{kind}",
        "",
        "1",
        {"topic": "erp.po.out"},
        at - timedelta(minutes=1),
        at,
    ]
    exemplars = [[{"k": "v"}], [at], [1.0], [hex_id(8)], [hex_id(16)]]
    tail: dict[str, list[Any]] = {
        "gauge": [42.0, 0, *exemplars],
        "sum": [42.0, 0, *exemplars, 2, True],
        "histogram": [3, 9.5, [1, 2], [5.0], *exemplars, 0, 1.0, 6.0, 2],
        "exponential_histogram": [3, 9.5, 1, 0, 0, [1, 2], 0, [], *exemplars, 0, 1.0, 6.0, 2],
        "summary": [3, 9.5, [0.5, 0.99], [3.0, 6.0], 0],
    }
    return head + tail[kind]


@pytest.mark.parametrize("kind", list(METRICS_INSERT))
def test_exporter_metric_points_are_accepted(store: Store, kind: str) -> None:
    table = METRIC_TABLES[kind][0]
    store.insert(table, [_metric_row(kind, datetime.now(UTC))], METRICS_INSERT[kind])
    row = store.query(f"SELECT MetricName, ServiceName, TriageRequest FROM {table}").result_rows
    assert row == [(f"kafka_consumergroup_lag_{kind}", "kafka-exporter", 0)]


def _otelcol() -> dict[str, Any]:
    config = yaml.safe_load(OTELCOL_CONFIG.read_text("utf-8"))
    assert isinstance(config, dict), f"{OTELCOL_CONFIG} is not a YAML mapping"
    return config


def test_shipped_collector_config_writes_into_triages_own_tables(store: Store) -> None:
    config = _otelcol()
    exporter = config["exporters"]["clickhouse"]
    assert exporter["create_schema"] is False, "Triage's migrations own the schema"
    tables = {"traces": exporter["traces_table_name"], "logs": exporter["logs_table_name"]}
    tables |= {kind: spec["name"] for kind, spec in exporter["metrics_tables"].items()}
    assert tables == {
        "traces": "otel_traces",
        "logs": "otel_logs",
        **{kind: table for kind, (table, _) in METRIC_TABLES.items()},
    }
    for table in tables.values():
        assert int(store.command(f"EXISTS TABLE {table}")) == 1, f"{table} is not in Triage's schema"
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "logs", "metrics"}
    for name, pipeline in pipelines.items():
        assert pipeline["exporters"] == ["clickhouse"], f"pipeline {name} must export to clickhouse"
        assert set(pipeline["receivers"]) <= set(config["receivers"])
        assert set(pipeline["processors"]) <= set(config["processors"])


def test_shipped_collector_image_is_pinned() -> None:
    image = re.compile(r"otel/opentelemetry-collector-contrib:([\w.-]+)")
    for path in (OTELCOL_CONFIG, OTELCOL_README):
        tags = image.findall(path.read_text("utf-8"))
        assert tags, f"{path} names no otelcol-contrib image"
        assert all(re.fullmatch(r"\d+\.\d+\.\d+", t) for t in tags), f"{path}: unpinned tags {tags}"
        assert len(set(tags)) == 1, f"{path}: several versions {tags}"
