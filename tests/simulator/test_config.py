"""The demo's configuration: demo.yaml is a valid config, compressed by --speed, on the chosen broker,
under the user's own file, environment and flags."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from simulator.config import DEMO_FILE, business_settings, demo_config, demo_settings, queue_destinations
from triage.errors import ConfigError
from triage.settings import load_settings


def test_demo_yaml_is_an_ordinary_valid_config() -> None:
    settings = load_settings(DEMO_FILE, environ={})
    assert 5 <= len(settings.facilities) <= 20
    assert {f.criticality for f in settings.facilities} == {"critical", "high", "normal"}
    assert {w.name for w in settings.workflows} >= {
        "procure_to_pay",
        "invoice_sync",
        "supplier_onboarding",
        "inventory_replenishment",
        "workforce_sync",
    }
    p2p = next(w for w in settings.workflows if w.name == "procure_to_pay")
    assert [s.name for s in p2p.steps] == [
        "requisition",
        "budget_approval",
        "capital_review",
        "po_created",
        "po_sent",
        "goods_received",
        "received_in_batch",
        "invoice_matched",
        "posted",
    ]
    assert [s.name for s in p2p.successors("po_sent")] == ["goods_received", "received_in_batch"]
    assert p2p.steps[2].when is not None and p2p.steps[2].when.min_value == 50_000
    kinds = {q.name: q.kind for q in settings.queues}
    assert kinds.pop("po-outbound") == "prometheus", "the Kafka topic is seen through its exporter"
    assert set(kinds.values()) == {"push"}


def test_speed_divides_every_duration() -> None:
    data = demo_config(40, "abc", None, date(2027, 1, 14))
    p2p = next(w for w in data["workflows"] if w["name"] == "procure_to_pay")
    approval = next(s for s in p2p["steps"] if s["name"] == "budget_approval")
    assert approval["sla"] == {"critical": 18.0, "high": 30.0, "normal": 60.0}
    batch = next(
        b for b in next(s for s in p2p["steps"] if "one_of" in s)["one_of"] if b["name"] == "received_in_batch"
    )
    assert batch["sla"] == {"critical": 48.0, "normal": 90.0}, "a branch's SLA is scaled like any step's"
    assert data["correlation"]["health_window"] == 30.0
    assert data["correlation"]["period_close"] == ["2027-01-15"], "the period closes tomorrow"
    assert business_settings().workflows[0].steps[1].sla.critical == 720.0  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="--speed must be positive"):
        demo_config(0, "abc", None, date(2027, 1, 14))


def test_rabbitmq_queues_get_names_unique_to_the_run() -> None:
    data = demo_config(40, "abc", "amqp://guest:guest@127.0.0.1:5672/", date(2027, 1, 14))
    approvals = next(q for q in data["queues"] if q["name"] == "approvals")
    assert approvals["kind"] == "rabbitmq" and approvals["queue"] == "triage-demo-abc.wf.approvals"
    kafka = next(q for q in data["queues"] if q["name"] == "po-outbound")
    assert kafka["kind"] == "prometheus" and kafka["queue"] == "erp.po.out", "the Kafka topic stays behind its exporter"


def test_the_kafka_exporter_listens_where_the_config_says() -> None:
    data = demo_config(40, "abc", None, date(2027, 1, 14), kafka_port=19308)
    kafka = next(q for q in data["queues"] if q["name"] == "po-outbound")
    assert kafka["url"] == "http://127.0.0.1:19308/metrics" and kafka["group"] == "supplier-orders"
    chosen = next(q for q in demo_config(40, "abc", None, date(2027, 1, 14))["queues"] if q["name"] == "po-outbound")
    assert chosen["url"].startswith("http://127.0.0.1:") and not chosen["url"].startswith("http://127.0.0.1:9308/")


def test_the_users_file_env_and_flags_win_and_the_store_defaults_to_the_run(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("port: 9001\ncorrelation: {interval: 3s}\nalerts: {alertmanager_url: null}\n")
    base = demo_config(40, "abc", None, date(2027, 1, 14))
    settings = demo_settings(base, str(user), {"otlp_http_port": 9318}, tmp_path, {"TRIAGE_PORT": "9002"})
    assert settings.port == 9002, "environment over file"
    assert settings.otlp_http_port == 9318, "flags over all"
    assert settings.correlation.interval == 3.0 and settings.correlation.health_window == 30.0, "merged, not replaced"
    assert settings.store == f"chdb://{tmp_path / 'data'}"
    assert (tmp_path / "redaction.key").stat().st_mode & 0o777 == 0o600
    kept = demo_settings(base, None, {"store": "chdb:///elsewhere"}, tmp_path, {})
    assert kept.store == "chdb:///elsewhere"


def test_replacing_the_demo_queues_is_refused(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("queues: [{name: other, kind: push}]\n")
    settings = demo_settings(demo_config(40, "abc", None, date(2027, 1, 14)), str(user), {}, tmp_path, {})
    with pytest.raises(ConfigError, match="approvals"):
        queue_destinations(settings, ["approvals", "roster"])
