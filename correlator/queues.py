"""Queue states as the state machine sees them: by every name a span may use for a queue."""

from __future__ import annotations

import logging

from collector import current_queue_states
from correlator.machine import QueueInfo
from triage.settings import Settings
from triage.store import Store

log = logging.getLogger("triage.correlator")


def queue_infos(store: Store, settings: Settings) -> dict[str, QueueInfo]:
    """Current queue states keyed by each entry's name, queue and stream, and a topic's last path part."""
    try:
        states = current_queue_states(store, settings)
    except Exception as exc:  # queue lag is evidence, not a precondition: judge without it
        log.warning("event=queue_states_unavailable error=%r", exc)
        return {}
    aliases = {q.name: [n for n in (q.name, q.queue, q.stream) if n] for q in settings.queues}
    out: dict[str, QueueInfo] = {}
    for state in states:
        info = QueueInfo(state.name, state.status, int(state.backlog or 0), state.oldest_age_seconds)
        names = set(aliases.get(state.name, [state.name]))
        if "/" in state.name:
            names.add(state.name.rsplit("/", 1)[1])
        for name in names:
            out[name] = info
    return out
