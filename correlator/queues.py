"""Queue states as the state machine sees them: by every name a span may use for a queue."""

from __future__ import annotations

import logging

from collector import current_queue_states
from correlator.machine import QueueInfo
from triage.settings import Settings
from triage.store import Store
from triage.vocabulary import QueueStatus

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
        if state.destination:  # the topic or queue spans name, as an exporter or pushed sample told it
            names.add(state.destination)
        if "/" in state.name:
            names.add(state.name.rsplit("/", 1)[1])
        for name in names:
            if name not in out or _worse(info, out[name]):
                out[name] = info
    return out


_SEVERITY: dict[str, int] = {
    QueueStatus.STOPPED: 4,
    QueueStatus.STALLED: 3,
    QueueStatus.LAGGING: 2,
    QueueStatus.UNKNOWN: 1,
    QueueStatus.OK: 0,
}


def _worse(a: QueueInfo, b: QueueInfo) -> bool:
    """Whether `a` tells more of a message's wait than `b` (several consumer groups read one topic)."""
    return (_SEVERITY.get(a.status, 1), a.backlog) > (_SEVERITY.get(b.status, 1), b.backlog)
