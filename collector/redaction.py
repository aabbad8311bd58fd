"""PHI redaction at ingest: nothing that looks like protected health information reaches the store.

Matches are replaced by a stable keyed token, `[PHI:<kind>:<hmac>]`, so that two occurrences of
the same value (an MRN in a span and in a log line) still correlate after redaction. The key
comes from an environment variable or a key file kept beside the data; without the key the
token cannot be reversed or recomputed from a guessed value.

The cost is paid only where PHI may be: one scan of the request's bytes decides whether the
message needs its string fields walked and rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from prometheus_client import Counter

log = logging.getLogger("triage.collector")

REPLACEMENTS = Counter("triage_redaction_replacements", "PHI values replaced by tokens at ingest", ["kind"])
REDACTED_REQUESTS = Counter("triage_redaction_requests", "Requests in which PHI was found and redacted")

# Default patterns. A pattern with a capture group redacts only the group (the label stays readable).
DEFAULT_PATTERNS: dict[str, str] = {
    "ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "mrn": r"\b(?i:MRN)[-:#=\s]*([A-Z]{0,3}\d{5,12})\b",
    "dob": r"\b(?i:DOB|D\.O\.B\.|date[ _-]of[ _-]birth|birth[ _-]?date)\s*[:=]?\s*"
    r"(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{8})",
    "phone": r"(?<![\w-])(?:\+?1[-.\s]?)?\(?\d{3}\)?[-.\s]?\d{3}[-.\s]\d{4}(?![\w-])",
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
    # A name is only recognisable by its label ("patient: Doe, Jane", "pt_name=Jane Doe").
    "name": r"\b(?i:patient(?:[ _]name)?|pt[ _]name)\s*[:=]\s*([A-Z][A-Za-z'-]+(?:,? [A-Z][A-Za-z'-]+){0,2})",
}
# HL7 v2 PID fields that identify a patient: ids (3), name (5), mother's maiden name (6), birth
# date (7), alias (9), address (11), phones (13, 14), account (18), SSN (19), licence (20).
PID_FIELDS = (3, 5, 6, 7, 9, 11, 13, 14, 18, 19, 20)
_PID = re.compile(r"(?:^|(?<=[\r\n]))PID\|[^\r\n]*")
TOKEN = re.compile(r"\[PHI:[a-z0-9_]+:[0-9a-f]{12}\]")
_NORMALIZE = {"ssn": re.compile(r"\D"), "phone": re.compile(r"\D")}


@dataclass(frozen=True)
class _Rule:
    kind: str
    regex: re.Pattern[str]


def load_key(env_name: str, key_file: Path | None) -> bytes:
    """The redaction key: from the environment, else a key file (created once, mode 0600)."""
    value = os.environ.get(env_name)
    if value:
        return value.encode()
    if key_file is None:
        raise ValueError(f"set {env_name} (the PHI redaction key) or give redaction.key_file")
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    log.warning(
        "event=redaction_key_created file=%s hint='set %s to share one key across instances'",
        key_file,
        env_name,
    )
    return key


class Redactor:
    """Rewrites PHI in strings and in whole OTLP messages; counts what it replaced."""

    def __init__(
        self,
        key: bytes,
        patterns: dict[str, str] | None = None,
        allow_keys: Iterable[str] = (),
        hl7: bool = True,
    ) -> None:
        self._key = key
        merged = dict(DEFAULT_PATTERNS)
        merged.update(patterns or {})
        self._rules = [_Rule(kind, re.compile(p)) for kind, p in merged.items() if p]
        self._hl7 = hl7
        self.allow_keys = frozenset(allow_keys)
        alternatives = [_probe_form(r.regex.pattern) for r in self._rules] + ([r"PID\|"] if hl7 else [])
        joined = "|".join(f"(?:{a})" for a in alternatives)
        # In serialized protobuf a string sits next to tag and length bytes that may be letters, so
        # word boundaries mean nothing there: the bytes probe drops them. Anchors cannot be made
        # sound at all, so a pattern with one turns the bytes probe off (every message is walked).
        self._anchored = any(_ANCHOR.search(r.regex.pattern) for r in self._rules)
        joined_bytes = _BOUNDARY.sub("", joined)
        # One RE2 scan (linear time, ~1 GB/s) decides whether a request needs the walk at all, and
        # then whether each string needs the Python patterns. RE2 has no lookarounds, so the probe
        # drops them: it may say yes more often than the patterns match, never less.
        options = re2.Options()
        options.max_mem = 64 << 20
        self._probe = re2.compile(joined_bytes.encode(), options=options)
        # Per string, Python's re is cheaper than a call into the RE2 wrapper (short inputs).
        self._probe_text = re.compile(
            "|".join(f"(?:{_scoped(r.regex.pattern)})" for r in self._rules) + (r"|PID\|" if hl7 else "")
        )

    def token(self, kind: str, value: str) -> str:
        """The stable token for a value: same key, kind and value give the same token."""
        norm = _NORMALIZE[kind].sub("", value) if kind in _NORMALIZE else value.strip().upper()
        digest = hmac.new(self._key, f"{kind}:{norm}".encode(), hashlib.sha256).hexdigest()[:12]
        return f"[PHI:{kind}:{digest}]"

    def may_contain(self, data: bytes) -> bool:
        """Cheap check over serialized bytes: False means no pattern can match anywhere inside."""
        return self._anchored or self._probe.search(data) is not None

    def redact_text(self, text: str) -> str:
        """The text with every PHI match replaced by its token."""
        if not text or self._probe_text.search(text) is None:
            return text
        if self._hl7 and "PID|" in text:
            text = _PID.sub(lambda m: self._redact_pid(m.group(0)), text)
        for rule in self._rules:
            text = rule.regex.sub(self._replacer(rule.kind), text)
        return text

    def _replacer(self, kind: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            if TOKEN.fullmatch(match.group(0)):
                return match.group(0)
            REPLACEMENTS.labels(kind).inc()
            if match.re.groups and match.group(1) is not None:
                offset = match.start(0)
                start, end = match.start(1) - offset, match.end(1) - offset
                text = match.group(0)
                return text[:start] + self.token(kind, match.group(1)) + text[end:]
            return self.token(kind, match.group(0))

        return replace

    def _redact_pid(self, segment: str) -> str:
        fields = segment.split("|")
        for index in PID_FIELDS:
            if index < len(fields) and fields[index] and not TOKEN.fullmatch(fields[index]):
                REPLACEMENTS.labels("hl7_pid").inc()
                fields[index] = self.token("hl7_pid", fields[index])
        return "|".join(fields)

    def redact_message(self, message: Message, raw: bytes | None = None) -> bool:
        """Redact every string field of an OTLP message in place; True when anything changed."""
        data = raw if raw is not None else message.SerializeToString()
        if not self.may_contain(data):
            return False
        name = message.DESCRIPTOR.name
        if name == "ExportTraceServiceRequest":
            changed = self._redact_traces(message)
        elif name == "ExportLogsServiceRequest":
            changed = self._redact_logs(message)
        else:
            changed = self._walk(message)
        if changed:
            REDACTED_REQUESTS.inc()
        return changed

    def _redact_traces(self, message: Any) -> bool:
        """Walk only the spans whose own bytes the probe flags: one PHI value costs one span's walk."""
        changed = False
        for resource_spans in message.resource_spans:
            changed = self._walk(resource_spans.resource) | changed
            for scope_spans in resource_spans.scope_spans:
                changed = self._walk(scope_spans.scope) | changed
                for span in scope_spans.spans:
                    if self.may_contain(span.SerializeToString()):
                        changed = self._redact_span(span) | changed
        return changed

    def _redact_span(self, span: Any) -> bool:
        changed = self._redact_fields(span, ("name",)) | self._redact_fields(span.status, ("message",))
        changed = self._redact_attributes(span.attributes) | changed
        for event in span.events:
            changed = self._redact_fields(event, ("name",)) | self._redact_attributes(event.attributes) | changed
        for link in span.links:
            changed = self._redact_attributes(link.attributes) | changed
        return changed

    def _redact_fields(self, message: Any, names: tuple[str, ...]) -> bool:
        changed = False
        for name in names:
            value = getattr(message, name)
            new = self.redact_text(value)
            if new != value:
                setattr(message, name, new)
                changed = True
        return changed

    def _redact_attributes(self, attributes: Any) -> bool:
        """A KeyValue list: strings rewritten in place, nested values walked, allow-listed keys kept."""
        changed = False
        for kv in attributes:
            if kv.key in self.allow_keys:
                continue
            value = kv.value
            kind = value.WhichOneof("value")
            if kind == "string_value":
                changed = self._redact_fields(value, ("string_value",)) | changed
            elif kind in ("array_value", "kvlist_value"):
                changed = self._walk(value) | changed
        return changed

    def _redact_logs(self, message: Any) -> bool:
        changed = False
        for resource_logs in message.resource_logs:
            changed = self._walk(resource_logs.resource) | changed
            for scope_logs in resource_logs.scope_logs:
                changed = self._walk(scope_logs.scope) | changed
                for record in scope_logs.log_records:
                    if self.may_contain(record.SerializeToString()):
                        changed = self._walk(record) | changed
        return changed

    def _walk(self, message: Message) -> bool:
        changed = False
        if message.DESCRIPTOR.name == "KeyValue":
            if message.key in self.allow_keys:  # type: ignore[attr-defined]
                return False
            return self._walk(message.value)  # type: ignore[attr-defined]
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                items = value if _repeated(field) else [value]
                for item in items:
                    changed = self._walk(item) or changed
            elif field.type == FieldDescriptor.TYPE_STRING:
                if _repeated(field):
                    new = [self.redact_text(v) for v in value]
                    if new != list(value):
                        del value[:]
                        value.extend(new)
                        changed = True
                else:
                    new_value = self.redact_text(value)
                    if new_value != value:
                        setattr(message, field.name, new_value)
                        changed = True
        return changed


_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


_BOUNDARY = re.compile(r"(?<!\\)\\[bB]")
_ANCHOR = re.compile(r"(?<![\\\[])\^|(?<!\\)\$")
_LOOKAROUND = re.compile(r"\(\?<?[=!](?:[^()\\]|\\.|\([^()]*\))*\)")


def _scoped(pattern: str) -> str:
    """'(?i)abc' → '(?i:abc)', so that patterns can be joined into one alternation."""
    match = _GLOBAL_FLAGS.match(pattern)
    return f"(?{match.group(1)}:{pattern[match.end() :]})" if match else pattern


def _probe_form(pattern: str) -> str:
    """A pattern RE2 runs that matches wherever `pattern` does: flags scoped, lookarounds dropped."""
    return _LOOKAROUND.sub("", _scoped(pattern))


def _repeated(field: Any) -> bool:
    return bool(field.is_repeated)
