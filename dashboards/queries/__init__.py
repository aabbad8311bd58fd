"""Everything the dashboards read from the store: named, parameterized SQL next to the function that runs it.

Pages and the report call these functions; no SQL lives in a callback.
"""

from dashboards.queries import alerts, report, telemetry, transaction, workflow

__all__ = ["alerts", "report", "telemetry", "transaction", "workflow"]
