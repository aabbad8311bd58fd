"""Triage's silences as a user expects them: the matching alert stays visible but pages nobody (not
Alertmanager, not webhooks), other alerts still page, and expiring the silence pages once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.alerts.conftest import PO_WORKFLOW, Alertmanager, AlertServer, Estate, Receiver, paging, unique, wait_for
from tests.conftest import server_settings


def test_silence_holds_back_one_facility_until_expired(
    chdb_path: Path, alertmanager: Alertmanager, receiver: Receiver
) -> None:
    rule = unique("po_blocked")
    hook = f"/hook/{rule}"
    rules = [{"name": rule, "when": {"state": ["blocked"]}, "group_by": ["workflow", "facility"]}]
    alerts = paging(alertmanager, receiver, hook, rules)
    server = AlertServer(server_settings(chdb_path, **PO_WORKFLOW, alerts=alerts)).start()
    estate = Estate(server)
    try:
        # Planned maintenance at St. Mary's: silence its alerts of this rule before anything breaks.
        body = {
            "matchers": [{"name": "alertname", "value": rule}, {"name": "facility", "value": "STM-ICU"}],
            "duration": "2h",
            "created_by": "on-call",
            "comment": "approval-saas maintenance",
        }
        created = httpx.post(f"{server.api}/api/v1/silences", json=body)
        assert created.status_code == 201, created.text
        silence = created.json()
        assert silence["state"] == "active" and silence["matchers"][1] == {
            "name": "facility",
            "value": "STM-ICU",
            "is_regex": False,
            "is_equal": True,
        }

        estate.block_po("4500000201")  # St. Mary's ICU: silenced
        estate.block_po("4500000202", facility="CLN-04", amount=950.0)  # Eastside Clinic: pages
        server.correlate()

        def by_facility() -> dict[str, dict]:
            return {a["labels"]["facility"]: a for a in server.alerts()}

        wait_for(lambda: len(by_facility()) == 2 and len(alertmanager.alerts(rule)) == 2, what="both alerts")
        mine = by_facility()
        assert mine["STM-ICU"]["silenced"] and mine["STM-ICU"]["silenced_by"] == [silence["id"]]
        assert not mine["CLN-04"]["silenced"]
        # Alertmanager holds the silenced alert as suppressed, by the silence Triage mirrored there.
        am = {a["labels"]["facility"]: a for a in alertmanager.alerts(rule)}
        assert am["STM-ICU"]["status"]["state"] == "suppressed" and am["STM-ICU"]["status"]["silencedBy"]
        assert am["CLN-04"]["status"]["state"] == "active"
        mirrored = httpx.get(f"{alertmanager.url}/api/v2/silences").json()
        assert any(silence["id"] in s["comment"] and s["status"]["state"] == "active" for s in mirrored)
        # The unsilenced alert pages on both channels; the silenced one on neither.
        wait_for(lambda: receiver.received(hook), what="the webhook for Eastside Clinic")
        wait_for(lambda: alertmanager.notifications(rule), what="Alertmanager's notification")
        time.sleep(1.5)
        assert [r.json["alert"]["labels"]["facility"] for r in receiver.received(hook)] == ["CLN-04"]
        assert {a["labels"]["facility"] for a in alertmanager.notifications(rule)} == {"CLN-04"}

        # Maintenance over: expiring the silence pages the St. Mary's alert, once, on both channels.
        expired = httpx.delete(f"{server.api}/api/v1/silences/{silence['id']}")
        assert expired.status_code == 200 and expired.json()["state"] == "expired"
        wait_for(lambda: len(receiver.received(hook)) == 2, what="the webhook for St. Mary's")
        wait_for(
            lambda: "STM-ICU" in {a["labels"]["facility"] for a in alertmanager.notifications(rule)},
            what="Alertmanager's notification for St. Mary's",
        )
        time.sleep(1.0)
        assert sorted(r.json["alert"]["labels"]["facility"] for r in receiver.received(hook)) == ["CLN-04", "STM-ICU"]
        assert not any(a["silenced"] for a in server.alerts())
        listed = httpx.get(f"{server.api}/api/v1/silences", params={"state": "expired"}).json()
        assert [s["id"] for s in listed] == [silence["id"]]
        assert not any(
            silence["id"] in s["comment"] and s["status"]["state"] == "active"
            for s in httpx.get(f"{alertmanager.url}/api/v2/silences").json()
        )
    finally:
        estate.close()
        server.stop()
        server.drop()


def test_silence_requests_are_validated(chdb_path: Path) -> None:
    server = AlertServer(server_settings(chdb_path, alerts={"interval": "1s"})).start()
    try:

        def post(body: dict) -> httpx.Response:
            return httpx.post(f"{server.api}/api/v1/silences", json=body)

        everything = post({"matchers": [{"name": "facility", "value": ".*", "isRegex": True}], "duration": "1h"})
        assert everything.status_code == 422 and "match every alert" in everything.text
        bad_regex = post({"matchers": [{"name": "facility", "value": "(STM", "is_regex": True}], "duration": "1h"})
        assert bad_regex.status_code == 422 and "not a valid regular expression" in bad_regex.text
        no_end = post({"matchers": [{"name": "alertname", "value": "x"}]})
        assert no_end.status_code == 422 and "either ends_at" in no_end.text
        past = post({"matchers": [{"name": "alertname", "value": "x"}], "ends_at": "2020-01-01T00:00:00Z"})
        assert past.status_code == 422 and "in the past" in past.text
        assert httpx.delete(f"{server.api}/api/v1/silences/nope").status_code == 404
    finally:
        server.stop()
        server.drop()
