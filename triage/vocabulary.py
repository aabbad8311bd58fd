"""The domain's names, defined once: transaction states, cause kinds, facility criticality, queue status.

Every other module imports these; SQL receives them as parameters (`{stuck:Array(String)}`), never
as literals. The values are the contract's (API, truth file, Alertmanager labels): add, don't rename.
Pydantic models and FastAPI parameters take the enums as types, so OpenAPI lists the values.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a business transaction stands."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    STALLED = "stalled"  # next step overdue, no technical fault found
    BLOCKED = "blocked"  # waiting on something broken
    FAILED = "failed"  # a step failed for good


class CauseKind(StrEnum):
    """Why a transaction is stuck."""

    QUEUE_BACKLOG = "queue_backlog"
    DEPENDENCY_ERROR = "dependency_error"
    TRANSFORMATION_FAILED = "transformation_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    UNKNOWN = "unknown"


class Criticality(StrEnum):
    """A facility's tier; SLAs are given per tier."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"


class QueueStatus(StrEnum):
    """A queue's health, Burrow-style (docs/queues.md)."""

    OK = "ok"
    LAGGING = "lagging"
    STALLED = "stalled"
    STOPPED = "stopped"
    UNKNOWN = "unknown"


class Role(StrEnum):
    """A part of the service a process runs (`triage serve --roles`); all of them by default."""

    COLLECTOR = "collector"  # OTLP/HTTP and OTLP/gRPC, raw log lines, queue pollers, log tailing
    CORRELATOR = "correlator"  # stitching and judging the transactions of its shard
    API = "api"  # the JSON API under /api/v1/
    DASHBOARDS = "dashboards"  # the Dash app under /dashboards/
    ALERTS = "alerts"  # the alert evaluator (one active at a time, by lease)


STATES: tuple[State, ...] = tuple(State)
CAUSE_KINDS: tuple[CauseKind, ...] = tuple(CauseKind)
CRITICALITIES: tuple[Criticality, ...] = tuple(Criticality)  # most critical first
ROLES: tuple[Role, ...] = tuple(Role)
# The states the product exists to find; the order is the display order.
STUCK: tuple[State, ...] = (State.STALLED, State.BLOCKED, State.FAILED)
# Stuck transactions whose cause may change with dependency health: re-judged periodically.
REJUDGED: tuple[State, ...] = (State.STALLED, State.BLOCKED)


def names(values: tuple[StrEnum, ...]) -> list[str]:
    """Plain strings for SQL parameters and JSON."""
    return [str(v) for v in values]
