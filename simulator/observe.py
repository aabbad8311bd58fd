"""What Triage should make of each span and log line the simulator sends: the business events.

The simulator knows which transaction every span belongs to; Triage must find that out by
stitching. This module says, for one span or log record of a known transaction, which event the
correlator should derive from it (step, error, transformation failure, message sent or taken),
following docs/correlation.md (the correlator's documented rules): a span is a step when it matches the
step's `match`; it is an error when its status is Error or its HTTP status is 5xx; it is a
permanent failure when its status message (a log: its body) matches
`correlation.transformation_patterns`; producers and consumers with a destination are kept as
messages. It also says which components a span counts for in dependency health.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triage.settings import Settings, StepMatch, Workflow

SPAN = "span"
LOG = "log"
ERROR_SEVERITY = 17
# Span kinds as stored (the OTLP enum names) and which of them count in dependency health.
HEALTH_KINDS = ("Server", "Client", "Consumer", "Internal")
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name", "rpc.service")


@dataclass(frozen=True)
class Observation:
    """One business event Triage should derive for a transaction."""

    at_ns: int
    emitted: float
    source: str
    step: str
    error: bool
    failure: bool
    span_kind: str
    service: str
    peer: str
    destination: str
    message_id: str
    facility: str
    value: float = 0.0  # the workflow's `value` attribute on this event (0 when absent)
    # The attributes the workflow's `when:` conditions name, as this span or log record held them.
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def at(self) -> float:
        return self.at_ns / 1e9

    @property
    def progress(self) -> bool:
        return bool(self.step) and not self.error and not self.failure


class Observer:
    """Derives the events of spans and logs of known transactions, as the configuration defines them."""

    def __init__(self, settings: Settings) -> None:
        self.workflows: dict[str, Workflow] = {w.name: w for w in settings.workflows}
        self.patterns = [re.compile(p) for p in settings.correlation.transformation_patterns]
        self.conditions = {
            w.name: sorted({n for s in w.steps if s.when for n in s.when.attributes}) for w in settings.workflows
        }

    def span(
        self,
        workflow: str,
        *,
        service: str,
        name: str,
        kind: str,
        attributes: Mapping[str, Any],
        status_message: str | None,
        failed: bool,
        at_ns: int,
        emitted: float,
    ) -> Observation | None:
        """The event of one span of a transaction of `workflow`, or None when the span makes none."""
        wf = self.workflows[workflow]
        attrs = {k: str(v) for k, v in attributes.items()}
        step = next((s.name for s in wf.steps if _span_matches(s.match, service, name, kind, attrs)), "")
        error = failed or _http_5xx(attrs.get("http.response.status_code")) or _http_5xx(attrs.get("http.status_code"))
        failure = bool(failed and status_message and any(p.search(status_message) for p in self.patterns))
        destination = attrs.get("messaging.destination.name", "")
        message = destination != "" and kind in ("Producer", "Consumer")
        peer = next((attrs[k] for k in _PEER_KEYS if attrs.get(k)), "")
        call = kind == "Client" and peer != ""
        if not (step or error or failure or message or call):
            return None
        return Observation(
            at_ns=at_ns,
            emitted=emitted,
            source=SPAN,
            step=step,
            error=error,
            failure=failure,
            span_kind=kind,
            service=service,
            peer=peer,
            destination=destination,
            message_id=attrs.get("messaging.message.id", ""),
            facility=attrs.get(wf.facility, "") if wf.facility else "",
            value=_number(attrs.get(wf.value, "")) if wf.value else 0.0,
            attributes={n: attrs[n] for n in self.conditions[workflow] if n in attrs},
        )

    def log(
        self,
        workflow: str,
        *,
        service: str,
        body: str,
        attributes: Mapping[str, str],
        severity: int,
        at_ns: int,
        emitted: float,
    ) -> Observation | None:
        """The event of one log record keyed to a transaction of `workflow`, or None."""
        wf = self.workflows[workflow]
        step = next((s.name for s in wf.steps if _log_matches(s.match, service, body, attributes)), "")
        error = severity >= ERROR_SEVERITY
        failure = any(p.search(body) for p in self.patterns)
        if not (step or error or failure):
            return None
        component = attributes.get("channel") or attributes.get("flow") or service
        return Observation(
            at_ns=at_ns,
            emitted=emitted,
            source=LOG,
            step=step,
            error=error,
            failure=failure,
            span_kind="",
            service=component,
            peer="",
            destination="",
            message_id=attributes.get("messaging.message.id", ""),
            facility=attributes.get(wf.facility, "") if wf.facility else "",
            value=_number(attributes.get(wf.value, "")) if wf.value else 0.0,
            attributes={n: attributes[n] for n in self.conditions[workflow] if n in attributes},
        )


def health_components(service: str, kind: str, attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """The components a span counts for in dependency health: its service, peer.service, server.address."""
    if kind not in HEALTH_KINDS:
        return ()
    names = [service, str(attributes.get("peer.service", "")), str(attributes.get("server.address", ""))]
    return tuple(dict.fromkeys(n for n in names if n))


def health_error(failed: bool, attributes: Mapping[str, Any]) -> bool:
    """Whether a span counts as an error in dependency health (status Error or HTTP 5xx)."""
    return failed or _http_5xx(attributes.get("http.response.status_code"))


def _number(text: str) -> float:
    """An attribute as the correlator reads a value (toFloat64OrZero): a number, else 0."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def _http_5xx(value: Any) -> bool:
    try:
        return int(str(value)) >= 500
    except (TypeError, ValueError):
        return False


def _span_matches(match: StepMatch, service: str, name: str, kind: str, attrs: Mapping[str, str]) -> bool:
    if match.log_pattern and not (match.span_name or match.service or match.kind or match.attributes):
        return False
    return (
        (match.span_name is None or match.span_name == name)
        and (match.service is None or match.service == service)
        and (match.kind is None or match.kind.capitalize() == kind)
        and all(attrs.get(k) == str(v) for k, v in match.attributes.items())
    )


def _log_matches(match: StepMatch, service: str, body: str, attrs: Mapping[str, str]) -> bool:
    if not match.log_pattern or not re.search(match.log_pattern, body):
        return False
    return (match.service is None or match.service == service) and all(
        attrs.get(k) == str(v) for k, v in match.attributes.items()
    )
