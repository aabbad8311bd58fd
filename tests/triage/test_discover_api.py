"""GET /api/v1/discover and `triage discover`: the proposal over HTTP, from the command line through a
running server (which holds the embedded store) and on a store of its own; what a 422 says."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import TRIAGE, LiveServer, free_port
from tests.correlator.test_discover import KEYS, Request, estate  # noqa: F401 (the estate fixture)
from triage.settings import load_settings


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TRIAGE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def proposed(text: str) -> dict[str, Any]:
    """The workflow a YAML proposal holds, as the loader reads it."""
    workflow = load_settings(None, yaml.safe_load(text), environ={}).workflows[0]
    return workflow.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def test_the_api_proposes_and_explains_what_it_cannot(estate: tuple[LiveServer, list[Request]]) -> None:  # noqa: F811
    server, requests = estate
    answer = httpx.get(f"{server.api}/api/v1/discover", params={"key": KEYS, "since": "-4d"}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["evidence"]["transactions"] == len(requests)
    assert body["workflow"]["steps"][0]["match"] == {"service": "eqp-portal", "span_name": "POST /requests"}
    review = next(s for s in body["evidence"]["steps"] if s["name"] == "review_request")
    assert review["human"] and review["repeated"] > 0 and review["median_seconds"] > 3600
    assert any(t["from_step"] == "" and t["to_step"] == "post_requests" for t in body["evidence"]["transitions"])
    assert proposed(body["yaml"]) == proposed(yaml.safe_dump({"workflows": [body["workflow"]]}))

    for params, says in (
        ({"key": "req.idd", "since": "-4d"}, "look close: req.id"),
        ({"key": " ", "since": "-4d"}, "name the attribute"),
        ({"key": "req.id", "since": "yesterday"}, "not a time"),
        ({"key": "req.id", "since": "-99999999999d"}, "not a time"),
        ({"key": "req.id", "since": "-1h", "until": "-2h"}, "must be after"),
    ):
        refused = httpx.get(f"{server.api}/api/v1/discover", params=params, timeout=60)
        assert refused.status_code == 422, (params, refused.text)
        assert says in refused.json()["detail"], refused.text


def test_the_cli_asks_the_server_and_its_yaml_passes_check_config(
    estate: tuple[LiveServer, list[Request]],  # noqa: F811
    tmp_path: Path,
) -> None:
    server, requests = estate
    out = tmp_path / "proposal.yaml"
    done = run("discover", "--key", KEYS, "--since", "-4d", "--api", server.api, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"{len(requests)} transactions carrying req.id" in done.stderr, "the evidence table"
    assert "review_request" in done.stderr and "human" in done.stderr
    checked = run("check-config", str(out))
    assert checked.returncode == 0, checked.stderr
    assert "discovered_req_id" in checked.stdout

    printed = run("discover", "--key", KEYS, "--since=-4d", "--api", server.api, "--name", "equipment_request")
    assert printed.returncode == 0, printed.stderr
    assert proposed(printed.stdout)["name"] == "equipment_request", "the YAML on stdout, the table on stderr"
    assert proposed(printed.stdout)["steps"] == proposed(out.read_text("utf-8"))["steps"]

    unknown = run("discover", "--key", "req.idd", "--api", server.api)
    assert unknown.returncode == 1 and "req.id" in unknown.stderr


def test_the_cli_on_a_store_of_its_own(tmp_path: Path) -> None:
    env = {"TRIAGE_PORT": str(free_port()), "PATH": "/usr/bin:/bin"}  # no server answers there
    done = run("discover", "--key", "erp.po_number", "--store", f"chdb://{tmp_path / 'data'}", env=env)
    assert done.returncode == 1, done.stderr
    assert "no spans or log records since" in done.stderr
    bad = run("discover", "--key", "erp.po_number", "--since", "last week", env=env)
    assert bad.returncode == 2 and "--since" in bad.stderr
