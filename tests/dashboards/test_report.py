"""The executive report: rendered by the server as HTML and as a real PDF (Chromium print), checked with
poppler's pdftotext/pdftoppm; and `triage report`, which asks a running server or opens the store itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, free_port
from tests.dashboards.conftest import DashboardServer

REPO = Path(__file__).resolve().parents[2]


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.mark.browser
def test_pdf_report_has_findings_charts_and_tables(
    populated: tuple[LiveServer, DashboardServer], artifacts: Path
) -> None:
    _, dashboards = populated
    response = httpx.get(f"{dashboards.url}/dashboards/report", params={"period": "7d", "format": "pdf"}, timeout=120)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = artifacts / "report.pdf"
    pdf.write_bytes(response.content)
    assert pdf_pages(pdf) >= 2
    text = pdf_text(pdf)
    assert "Workflow stalls" in text
    assert "In the last 7d, 5 business transactions started; 3 (60.0%) stalled at least once" in " ".join(text.split())
    assert "Leading cause: dependency error on approval-saas" in " ".join(text.split())
    for heading in ("Stalls per day", "Cycle time against target", "Stalls by facility", "Worst open cases"):
        assert heading in text
    assert "St. Mary's ICU" in text
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(artifacts / "report-page")], check=True)
    pages = sorted(artifacts.glob("report-page-*.png"))
    assert pages and all(p.stat().st_size > 5_000 for p in pages), "each page renders to a non-blank image"


def test_html_report_is_self_contained(populated: tuple[LiveServer, DashboardServer]) -> None:
    _, dashboards = populated
    html = httpx.get(f"{dashboards.url}/dashboards/report", params={"period": "14d"}, timeout=120).text
    assert html.startswith("<!DOCTYPE html>") and "last 14d" in html
    assert html.count('src="data:image/svg+xml;base64,') >= 3, "charts are static SVG images (kaleido)"
    assert "<script" not in html and "http" not in html.split("<body>")[1].split("/api/")[0][:0]
    bad = httpx.get(f"{dashboards.url}/dashboards/report", params={"period": "soon"})
    assert bad.status_code == 422 and "write 7d" in bad.text


def _triage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, **env},
        check=False,
    )


def test_cli_fetches_the_report_from_the_running_server(
    populated: tuple[LiveServer, DashboardServer], tmp_path: Path
) -> None:
    _, dashboards = populated
    out = tmp_path / "weekly.html"
    # The configured host:port answers, so the CLI must not open the (other, empty) store it is given.
    env = {"TRIAGE_HOST": "127.0.0.1", "TRIAGE_PORT": str(dashboards.port), "TRIAGE_STORE": f"chdb://{tmp_path}/unused"}
    done = _triage(["report", "--period", "7d", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    assert f"from the server http://127.0.0.1:{dashboards.port}" in " ".join(done.stderr.split())
    assert "5 business transactions started" in out.read_text()
    assert not (tmp_path / "unused").exists()


@pytest.mark.browser
def test_cli_renders_from_the_store_when_no_server_answers(tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    env = {"TRIAGE_HOST": "127.0.0.1", "TRIAGE_PORT": str(free_port()), "TRIAGE_REDACTION__ENABLED": "false"}
    done = _triage(["report", "--period", "30d", "--out", str(out), "--store", f"chdb://{tmp_path}/data"], env)
    assert done.returncode == 0, done.stderr
    assert "from the store" in " ".join(done.stderr.split())
    assert pdf_pages(out) >= 1
    assert "No business transactions started" in pdf_text(out)


def test_cli_refuses_an_unknown_format(tmp_path: Path) -> None:
    done = _triage(["report", "--out", str(tmp_path / "report.docx")], {"TRIAGE_PORT": str(free_port())})
    assert done.returncode == 2 and "must end in .html or .pdf" in " ".join(done.stderr.split())
