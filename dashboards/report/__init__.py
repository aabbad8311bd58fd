"""The executive workflow-stall report: a model built from the store, rendered as a page, HTML or PDF."""

from dashboards.report.document import render_html
from dashboards.report.model import PERIODS, Report, build_report, parse_period
from dashboards.report.pdf import ReportError, html_to_pdf

__all__ = ["PERIODS", "Report", "ReportError", "build_report", "html_to_pdf", "parse_period", "render", "render_html"]


def render(report: Report, kind: str) -> bytes:
    """The report as `html` or `pdf` bytes."""
    html = render_html(report)
    return html_to_pdf(html) if kind == "pdf" else html.encode()
