"""HTML to PDF with headless Chromium's print-to-PDF (the Debian `chromium` package, or TRIAGE_CHROMIUM)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from triage.errors import TriageError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


class ReportError(TriageError):
    """The report could not be rendered."""


def chromium() -> str:
    """The Chromium binary to print with."""
    configured = os.environ.get("TRIAGE_CHROMIUM")
    if configured:
        return configured
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ReportError(
        "PDF output needs Chromium and none was found: `apt-get install chromium` (Debian), or set "
        "TRIAGE_CHROMIUM to a Chrome/Chromium binary; or write the report as .html"
    )


def html_to_pdf(html: str, timeout: float = 120.0) -> bytes:
    """Print the HTML document to PDF (A4, as its @page rule says) and return the PDF bytes."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="triage-report-") as tmp:
        source, target = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        source.write_text(html, "utf-8")
        command = [
            binary,
            *FLAGS,
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReportError(f"Chromium ({binary}) could not print the report: {exc}") from exc
        if not target.exists() or target.stat().st_size == 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise ReportError(f"Chromium ({binary}) exited {done.returncode} without a PDF: {' | '.join(detail)}")
        return target.read_bytes()
