"""Which transactions a cycle judges, and the compact events it judges them by.

The worklist (scratch table correlator_affected) holds every transaction with an event ingested
since the cycle began stitching, every open one whose next step fell due, now and then every stuck
one (its cause may change with dependency health), and in a replay every one with an event in range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from correlator.columnar import COLUMNS, EventColumns
from correlator.transactions import TRANSACTION_COLUMNS
from triage.settings import Shard
from triage.store import Store
from triage.vocabulary import REJUDGED, State, names

# Statements name the default scratch table and __OWNED__ (the shard's condition); a Worklist swaps in its own.
_NEW = """
INSERT INTO correlator_affected
SELECT DISTINCT Workflow, Key FROM business_events WHERE IngestedAt >= {cycle:DateTime64(3)} AND __OWNED__
"""
_DUE = """
INSERT INTO correlator_affected
SELECT Workflow, Key FROM business_transactions FINAL
WHERE State = {open:String} AND DueAt <= {now:DateTime64(9)} AND __OWNED__
"""
_STUCK = """
INSERT INTO correlator_affected
SELECT Workflow, Key FROM business_transactions FINAL WHERE has({rejudged:Array(String)}, State) AND __OWNED__
"""
# In-flight transactions waiting after steps that stopped or moved again: their forecasts change.
_WAITERS = """
INSERT INTO correlator_affected
SELECT Workflow, Key FROM business_transactions FINAL
WHERE State = {open:String} AND has({steps:Array(String)}, concat(Workflow, '/', CurrentStep)) AND __OWNED__
"""
_RANGE = """
INSERT INTO correlator_affected
SELECT DISTINCT Workflow, Key FROM business_events
WHERE At >= {start:DateTime64(9)} AND At <= {end:DateTime64(9)} AND __OWNED__
"""
# The same rows as columns for the fast path (correlator/columnar.py): a delivery seen twice counts once.
_EVENT_COLUMNS = """
SELECT Workflow, Key, Step, At, Source, Service, TraceId, SpanKind, Status, Failure, Detail, Peer,
       Destination, MessageId, Facility, Value, Received__ATTRIBUTES__
FROM business_events
WHERE (Workflow, Key) IN (SELECT Workflow, Key FROM correlator_affected)
ORDER BY Workflow, Key, At
LIMIT 1 BY Workflow, Key, EventId
"""
# The stored verdicts of the worklist, every written column but the version (TRANSACTION_COLUMNS order).
_PREVIOUS = f"""
SELECT {", ".join(TRANSACTION_COLUMNS[:-1])} FROM business_transactions FINAL
WHERE (Workflow, Key) IN (SELECT Workflow, Key FROM correlator_affected)
"""


class Worklist:
    """One correlator's worklist: its scratch table, and only the transactions of its shard."""

    def __init__(self, store: Store, shard: Shard | None = None, table: str = "correlator_affected") -> None:
        self.store = store
        self.table = table
        self._owned = (shard or Shard()).owns()

    def _sql(self, sql: str) -> str:
        return sql.replace("correlator_affected", self.table).replace("__OWNED__", self._owned)

    def _command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        self.store.command(self._sql(sql), parameters)

    def collect(
        self,
        cycle_start: datetime,
        now: datetime,
        *,
        rejudge_stuck: bool,
        replay: tuple[datetime, datetime] | None = None,
        waiting_after: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Fill the worklist for a cycle that began stitching at `cycle_start` and judges at `now`; with
        `waiting_after` (workflow, step) pairs, the in-flight transactions waiting after those steps too."""
        self._command("TRUNCATE TABLE correlator_affected")
        self._command(_NEW, {"cycle": cycle_start})
        if waiting_after:
            steps = [f"{workflow}/{step}" for workflow, step in waiting_after]
            self._command(_WAITERS, {"open": str(State.IN_PROGRESS), "steps": steps})
        if rejudge_stuck:
            self._command(_STUCK, {"rejudged": names(REJUDGED)})
        self._command(_DUE, {"now": now, "open": str(State.IN_PROGRESS)})
        if replay is not None:
            self._command(_RANGE, {"start": replay[0], "end": replay[1]})

    def load_columns(self, attributes: bool = True) -> EventColumns:
        """The worklist's events as columns, by transaction and in time order; a delivery seen twice
        counts once. Without `attributes` the events' attribute maps are not read."""
        sql = _EVENT_COLUMNS.replace("__ATTRIBUTES__", ", Attributes" if attributes else "")
        result = self.store.query(self._sql(sql))
        if not result.row_count:  # the embedded engine names no columns for an empty result
            return EventColumns(**{name: [] for name in COLUMNS.values() if attributes or name != "attributes"})
        return EventColumns(**{COLUMNS[n]: c for n, c in zip(result.column_names, result.result_columns, strict=True)})

    def previous_verdicts(self) -> dict[tuple[str, str], Stored]:
        """The worklist's stored verdicts by (workflow, key)."""
        return {(r[0], r[1]): Stored(tuple(r)) for r in self.store.query(self._sql(_PREVIOUS)).result_rows}


class Stored:
    """A transaction's stored verdict: its row of business_transactions without the version."""

    __slots__ = ("row",)
    _CAUSE = (TRANSACTION_COLUMNS.index("CauseKind"), TRANSACTION_COLUMNS.index("CauseComponent"))
    _STATE = TRANSACTION_COLUMNS.index("State")
    _STEP = TRANSACTION_COLUMNS.index("CurrentStep")

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row

    @property
    def cause_and_state(self) -> tuple[str, str, str]:
        """(cause kind, cause component, state), as verdicts.cause_rows takes the previous verdict."""
        return self.row[self._CAUSE[0]], self.row[self._CAUSE[1]], self.row[self._STATE]

    @property
    def current_step(self) -> str:
        return str(self.row[self._STEP])

    def same_as(self, row: list[Any]) -> bool:
        """Whether a new row (with its version last) says nothing the stored one does not."""
        return len(row) == len(self.row) + 1 and all(a == b for a, b in zip(self.row, row, strict=False))
