"""The report as one self-contained HTML document: findings first, then charts as static SVG images
(Plotly's static export through kaleido and the machine's Chromium), then tables. It prints to PDF as is."""

from __future__ import annotations

import atexit
import base64
import logging
import threading
import warnings
from html import escape

import plotly.graph_objects as go

from dashboards.report.model import Report, ReportTable

log = logging.getLogger("triage.dashboards")
_export_lock = threading.Lock()
_export_state: dict[str, object] = {}

STYLE = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "DejaVu Sans", Inter, system-ui, sans-serif; color: #111827; margin: 24px; font-size: 12px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px; }
.subtitle { color: #6b7280; margin: 0 0 14px; }
.findings p { font-size: 14px; line-height: 1.45; margin: 6px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 620px; page-break-inside: avoid; break-inside: avoid; }
figcaption { color: #6b7280; font-size: 11px; }
figure img { width: 100%; }
table { border-collapse: collapse; width: 100%; margin-bottom: 8px; page-break-inside: auto; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 3px 6px; text-align: left; }
th { background: #f3f4f6; } td.num, th.num { text-align: right; }
tr { page-break-inside: avoid; }
.note { color: #b45309; }
"""


def _start_exporter() -> bool:
    """Start kaleido's browser once per process; False (and why, logged once) when it cannot run here."""
    if "ok" not in _export_state:
        try:
            import kaleido

            kaleido.start_sync_server(silence_warnings=True)
            atexit.register(kaleido.stop_sync_server, silence_warnings=True)
            _export_state["ok"] = True
        except Exception as exc:  # no Chrome/Chromium, or kaleido missing: the report goes out without images
            log.warning("event=report_charts_unavailable error=%r hint='install chromium for chart images'", exc)
            _export_state.update(ok=False, error=str(exc))
    return bool(_export_state["ok"])


def svg_image(figure: go.Figure) -> str | None:
    """A data: URI of the figure as SVG, or None when static export is unavailable."""
    with _export_lock:
        if not _start_exporter():
            return None
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message="The kopts argument is ignored"
                )  # plotly with kaleido's server
                data = figure.to_image(format="svg")
        except Exception as exc:
            log.warning("event=report_chart_failed error=%r", exc)
            return None
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode()


def _table(t: ReportTable) -> str:
    if not t.rows:
        return ""
    head = "".join(f'<th class="{"num" if i in t.numeric else ""}">{escape(h)}</th>' for i, h in enumerate(t.headers))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if i in t.numeric else ""}">{escape(str(c))}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in t.rows
    )
    return f"<h2>{escape(t.title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    """The whole report as one HTML string (no external resources)."""
    parts = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="subtitle">{escape(report.subtitle)}</p>',
        '<section class="findings">' + "".join(f"<p>{escape(line)}</p>" for line in report.summary) + "</section>",
    ]
    if report.empty:
        parts += [f"<p>{escape(line)}</p>" for line in report.empty_hint]
    figures = []
    for chart in report.charts:
        src = svg_image(chart.figure)
        if src is None:
            figures.append(
                f'<p class="note">Chart "{escape(chart.title)}" could not be drawn on this machine '
                f"(static export needs Chromium); the tables below carry the same numbers.</p>"
            )
            continue
        figures.append(
            f'<figure><h2>{escape(chart.title)}</h2><img alt="{escape(chart.title)}" src="{src}">'
            f"<figcaption>{escape(chart.caption)}</figcaption></figure>"
        )
    if figures:
        parts.append('<section class="charts">' + "".join(figures) + "</section>")
    parts += [_table(t) for t in report.tables]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report.title)}</title><style>{STYLE}</style></head><body>" + "".join(parts) + "</body></html>"
    )
