"""PHI redaction: patterns, stable keyed tokens, allow-listed business keys, HL7 PID segments."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.redaction import TOKEN, Redactor, load_key

KEY = b"test-key"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(KEY, allow_keys={"erp.po_number"})


@pytest.mark.parametrize(
    ("text", "kind", "phi"),
    [
        ("SSN 078-05-1120 on file", "ssn", "078-05-1120"),
        ("patient MRN: 00481516 admitted", "mrn", "00481516"),
        ("mrn=MRN00481516", "mrn", "MRN00481516"),
        ("DOB 1961-07-04", "dob", "1961-07-04"),
        ("date of birth: 07/04/1961", "dob", "07/04/1961"),
        ("call (555)201-7788 now", "phone", "(555)201-7788"),
        ("call +1 555.201.7788", "phone", "555.201.7788"),
        ("notify maribel.delacroix@example.org", "email", "maribel.delacroix@example.org"),
        ("patient: Delacroix, Maribel J admitted", "name", "Delacroix, Maribel"),
        ("pt_name=Maribel Delacroix", "name", "Maribel Delacroix"),
    ],
)
def test_default_patterns(redactor: Redactor, text: str, kind: str, phi: str) -> None:
    out = redactor.redact_text(text)
    assert phi not in out
    assert f"[PHI:{kind}:" in out


def test_business_values_are_left_alone(redactor: Redactor) -> None:
    text = "patient admitted; PO 4500012345 for STM-ICU $182000.50 at 2026-11-24 10:15:02 trace 0af7651916cd43dd8448eb211c80319c"
    assert redactor.redact_text(text) == text


def test_tokens_are_stable_keyed_and_normalized(redactor: Redactor) -> None:
    a = redactor.redact_text("phone (555) 201-7788")
    b = redactor.redact_text("phone 555-201-7788")
    assert TOKEN.search(a) and TOKEN.search(a).group(0) == TOKEN.search(b).group(0)  # type: ignore[union-attr]
    other_key = Redactor(b"another-key").redact_text("phone 555-201-7788")
    assert other_key != b
    assert redactor.redact_text(a) == a, "redacting twice changes nothing"


def test_hl7_pid_fields_are_redacted_and_other_segments_kept(redactor: Redactor, shared_data: Path) -> None:
    adt = (shared_data / "hl7" / "adt_a01.hl7").read_bytes().decode()
    out = redactor.redact_text(adt)
    for phi in (
        "Delacroix",
        "Maribel",
        "19610704",
        "078-05-1120",
        "MRN00481516",
        "12 Elm St",
        "201-7788",
        "ACCT99812",
    ):
        assert phi not in out, phi
    segments = {s.split("|")[0]: s for s in out.split("\r") if s}
    assert segments["MSH"] == adt.split("\r")[0]
    assert segments["PV1"].startswith("PV1|1|I|ICU^0412^A^STMARY")
    assert segments["PID"].split("|")[8] == "F", "sex is not an identifier and stays"
    requisition = (shared_data / "hl7" / "rqi_supply_requisition.hl7").read_bytes().decode()
    out = redactor.redact_text(requisition)
    assert "Delacroix" not in out and "MRN00481516" not in out
    assert "ITM-778120^Central venous catheter kit 7Fr" in out
    item_master = (shared_data / "hl7" / "mfn_item_master.hl7").read_bytes().decode()
    assert redactor.redact_text(item_master) == item_master, "no patient data, nothing changes"


def test_message_walk_skips_allow_listed_keys_and_redacts_every_string(redactor: Redactor) -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "host.owner", "ops@example.org"
    span = rs.scope_spans.add().spans.add()
    span.name = "lookup 078-05-1120"
    span.status.message = "no patient with MRN 00481516"
    allowed = span.attributes.add()
    allowed.key, allowed.value.string_value = "erp.po_number", "555-201-7788"
    nested = span.attributes.add()
    nested.key = "patient"
    nested.value.kvlist_value.values.add(key="phone").value.string_value = "555-201-7788"
    event = span.events.add()
    event.attributes.add(key="note").value.string_value = "DOB 1961-07-04"
    assert redactor.redact_message(req) is True
    text = str(req)
    for phi in ("ops@example.org", "078-05-1120", "00481516", "1961-07-04"):
        assert phi not in text
    assert allowed.value.string_value == "555-201-7788", "allow-listed business key kept verbatim"
    assert "555-201-7788" not in str(nested)


def test_probe_sees_phi_next_to_protobuf_tag_bytes(redactor: Redactor) -> None:
    # A string value is followed in the wire format by the next field's tag, which may be a letter
    # ('J' is the tag of span attributes): a word-boundary probe would miss the SSN before it.
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.name = "078-05-1120"
    span.attributes.add(key="k").value.string_value = "v"
    raw = req.SerializeToString()
    assert b"1120J" in raw
    assert redactor.may_contain(raw)
    assert redactor.redact_message(req, raw) and "078-05-1120" not in span.name


def test_clean_requests_are_not_walked(redactor: Redactor) -> None:
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = "channel ADT-Inbound deployed"
    assert redactor.redact_message(req) is False


def test_custom_patterns_and_disabling_one(redactor: Redactor) -> None:
    custom = Redactor(KEY, {"badge": r"(?i)badge#\d{4}", "email": ""})
    out = custom.redact_text("Badge#1234 mailed a@b.org")
    assert "1234" not in out and "[PHI:badge:" in out
    assert "a@b.org" in out, "a default pattern set to '' is off"


def test_key_file_is_created_once_with_owner_only_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIAGE_TEST_KEY", raising=False)
    path = tmp_path / "keys" / "redaction.key"
    first = load_key("TRIAGE_TEST_KEY", path)
    assert load_key("TRIAGE_TEST_KEY", path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("TRIAGE_TEST_KEY", "from-env")
    assert load_key("TRIAGE_TEST_KEY", path) == b"from-env"
