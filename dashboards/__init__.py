"""Dashboards: the Dash app mounted under /dashboards/ (overview, drill-down, workflows, dependencies,
alerts, report) and the executive report as HTML or PDF.

Public surface: `mount_dashboards(app, store, settings)` adds them to the main FastAPI app.
"""

from dashboards.mount import mount_dashboards

__all__ = ["mount_dashboards"]
