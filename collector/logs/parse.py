"""Lines to log entries: match a source's profile, read the fields, join multi-line entries."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.logs.profile import RESERVED_GROUPS, Profile, compile_profile, profile_book
from collector.logs.timestamps import TimestampParser, epoch_ns
from triage.settings import LogSource

PARSE_ERROR = "log.parse_error"
# A continuation that runs longer than this is not one entry's stack trace: the rest stands alone.
MAX_CONTINUATION_LINES = 2000

_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?:\s+[^\s=\]]+="(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(r'([^\s=\]]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r"\\([\"\\\]])")
_MISSING = object()


@dataclass
class LogEntry:
    """One log record in the making: the fields a profile read from its line(s)."""

    body: str
    line: str
    parsed: bool = True
    time_unix_nano: int = 0
    severity_text: str = ""
    severity_number: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    trace_id: bytes = b""
    span_id: bytes = b""
    trace_flags: int = 0
    groups: dict[str, str] = field(default_factory=dict)
    continuation: list[str] = field(default_factory=list)
    offset: int = -1  # byte offset of the first line in its file (file tails only)


def _hex_id(value: Any, size: int) -> bytes:
    text = str(value).strip().lower()
    if len(text) != size * 2:
        return b""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return b""
    return b"" if raw == bytes(size) else raw


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _flatten(node: dict[str, Any], prefix: str, out: dict[str, str], skip: set[str]) -> None:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if name in skip or value is None:
            continue
        if isinstance(value, dict) and value:
            _flatten(value, f"{name}.", out, skip)
        else:
            out[name] = _scalar(value)


def _lookup(doc: dict[str, Any], key: str) -> Any:
    """A top-level key, else a dotted path into nested objects."""
    if key in doc:
        return doc[key]
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


class LineParser:
    """Parses lines of one source with its profile; `finish` completes an entry once its lines are in."""

    def __init__(self, source: LogSource, now: Callable[[], datetime] | None = None) -> None:
        book = profile_book()
        self.source = source
        self.profile: Profile = compile_profile(source)
        self.severity_numbers = book.severity_numbers
        self.syslog_severities = book.syslog_severities
        self.syslog_facilities = book.syslog_facilities
        self.timestamps = TimestampParser(source.timezone, source.timestamp_format, now)
        self.trace_patterns = [re.compile(p) for p in book.trace_context]
        self._last = 0

    @property
    def multiline(self) -> bool:
        return self.profile.multiline

    def parse(self, line: str) -> LogEntry | None:
        """The entry this line starts, or None when it starts none (a continuation or garbage)."""
        if self.profile.kind == "json":
            return self._parse_json(line)
        patterns = self.profile.patterns
        order = [self._last] + [i for i in range(len(patterns)) if i != self._last]
        for index in order:
            match = patterns[index].match(line)
            if match is not None:
                self._last = index
                return self._from_groups(match.groupdict(), line)
        return None

    def unparsed(self, line: str, reason: str) -> LogEntry:
        """A line stored as it is, saying why it could not be parsed."""
        return LogEntry(body=line, line=line, parsed=False, attributes={PARSE_ERROR: reason})

    def no_match_reason(self) -> str:
        if self.profile.kind == "json":
            return "not a JSON object"
        return f"no pattern of log profile {self.profile.name!r} matched this line"

    def _from_groups(self, groups: dict[str, str | None], line: str) -> LogEntry:
        nil = self.profile.nil_value
        values = {k: v for k, v in groups.items() if v is not None and v != "" and v != nil}
        body = line if "message" not in groups else (groups["message"] or "")
        entry = LogEntry(body=body.rstrip(), line=line)
        entry.groups = values
        self._set_time(entry, values.get("timestamp"))
        self._set_severity(entry, values.get("severity"))
        if "pri" in values:
            self._set_priority(entry, int(values["pri"]))
        if "sd" in values:
            self._set_structured_data(entry, values["sd"])
        self._set_trace(entry, values)
        for name, value in values.items():
            if name in RESERVED_GROUPS or name.startswith("_"):
                continue
            entry.attributes.setdefault(self.profile.attribute_name(name), value.strip())
        return entry

    def _parse_json(self, line: str) -> LogEntry | None:
        try:
            doc = json.loads(line)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        roles: dict[str, Any] = {}
        used: set[str] = set()
        for role, keys in self.profile.fields.items():
            for key in keys:
                value = _lookup(doc, key)
                if value is not _MISSING and value is not None and value != "":
                    roles[role] = value
                    used.add(key)
                    break
        message = roles.get("message", _MISSING)
        body = line if message is _MISSING else _scalar(message)
        entry = LogEntry(body=body.rstrip(), line=line)
        self._set_json_time(entry, roles.get("timestamp"))
        self._set_severity(entry, None if "severity" not in roles else _scalar(roles["severity"]))
        self._set_trace(entry, {k: _scalar(v) for k, v in roles.items() if k in RESERVED_GROUPS})
        flat: dict[str, str] = {}
        _flatten(doc, "", flat, used)
        for key, value in flat.items():
            entry.attributes.setdefault(self.profile.attribute_name(key), value)
        entry.groups = {"message": entry.body, **flat}
        return entry

    def _set_json_time(self, entry: LogEntry, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict) and "epochSecond" in value:  # log4j2 JsonLayout "instant"
            entry.time_unix_nano = int(value["epochSecond"]) * 1_000_000_000 + int(value.get("nanoOfSecond", 0))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            entry.time_unix_nano = epoch_ns(value) or 0
        else:
            self._set_time(entry, _scalar(value))
        if not entry.time_unix_nano:
            entry.attributes[PARSE_ERROR] = f"timestamp {value!r} not understood; the record has its observed time"

    def _set_time(self, entry: LogEntry, text: str | None) -> None:
        if not text:
            return
        parsed = self.timestamps.parse(text)
        if parsed is None:
            entry.attributes[PARSE_ERROR] = f"timestamp {text!r} not understood; the record has its observed time"
        else:
            entry.time_unix_nano = parsed

    def _set_severity(self, entry: LogEntry, text: str | None) -> None:
        if text:
            entry.severity_text = text.strip()
            entry.severity_number = self.severity_numbers.get(entry.severity_text.lower(), 0)

    def _set_priority(self, entry: LogEntry, pri: int) -> None:
        if pri > 191:
            return
        facility, severity = divmod(pri, 8)
        entry.attributes["syslog.facility"] = self.syslog_facilities[facility]
        if not entry.severity_text:
            self._set_severity(entry, self.syslog_severities[severity])

    def _set_structured_data(self, entry: LogEntry, sd: str) -> None:
        for element in _SD_ELEMENT.finditer(sd):
            params = _SD_PARAM.findall(element.group("params"))
            if not params:
                entry.attributes.setdefault(f"syslog.sd.{element.group('id')}", "")
            for name, value in params:
                entry.attributes.setdefault(f"syslog.sd.{element.group('id')}.{name}", _SD_UNESCAPE.sub(r"\1", value))

    def _set_trace(self, entry: LogEntry, values: dict[str, str]) -> None:
        parent = values.get("traceparent")
        if parent:
            parts = parent.strip().split("-")
            if len(parts) == 4:
                values = {"trace_id": parts[1], "span_id": parts[2], "trace_flags": parts[3], **values}
        if not entry.trace_id and values.get("trace_id"):
            entry.trace_id = _hex_id(values["trace_id"], 16)
        if not entry.span_id and values.get("span_id"):
            entry.span_id = _hex_id(values["span_id"], 8)
        flags = values.get("trace_flags")
        if flags and not entry.trace_flags:
            try:
                entry.trace_flags = int(flags, 16) & 0xFF
            except ValueError:
                pass

    def finish(self, entry: LogEntry) -> LogEntry:
        """Join continuation lines into the body, run the profile's extract rules, find trace context."""
        message = entry.body
        if entry.continuation:
            entry.body = "\n".join([entry.body, *entry.continuation]).strip("\n").rstrip()
            entry.continuation = []
        if entry.parsed:
            self._extract(entry, message)
        if not entry.trace_id:
            self._find_trace_context(entry)
        return entry

    def _extract(self, entry: LogEntry, message: str) -> None:
        for source, pattern in self.profile.extract:
            text = entry.body if source == "body" else message if source == "message" else entry.groups.get(source)
            if not text:
                continue
            match = pattern.search(text)
            if match is None:
                continue
            for name, value in match.groupdict().items():
                if value and not name.startswith("_"):
                    entry.attributes.setdefault(self.profile.attribute_name(name), value.strip())

    def _find_trace_context(self, entry: LogEntry) -> None:
        found: dict[str, str] = {}
        for pattern in self.trace_patterns:
            match = pattern.search(entry.line)
            if match is not None:
                for name, value in match.groupdict().items():
                    if value and not name.startswith("_"):
                        found.setdefault(name, value)
            if "trace_id" in found and "span_id" in found:
                break
        if found:
            self._set_trace(entry, found)


class EntryAssembler:
    """Groups lines into entries: where the profile allows it, a line that starts no entry continues
    the one before it (a Java stack trace after its log4j line). The last entry stays pending until
    the next one starts or `flush` is called, since more of its lines may still come."""

    def __init__(self, parser: LineParser) -> None:
        self.parser = parser
        self.pending: LogEntry | None = None
        self.lines = 0
        self.blank = 0

    def feed(self, line: str, offset: int = -1) -> list[LogEntry]:
        """Entries completed by this line."""
        self.lines += 1
        pending = self.pending
        joinable = self.parser.multiline and pending is not None and pending.parsed
        if not line.strip():
            if joinable and pending is not None:
                pending.continuation.append(line)
            else:
                self.blank += 1
            return []
        entry = self.parser.parse(line)
        if entry is None:
            if joinable and pending is not None and len(pending.continuation) < MAX_CONTINUATION_LINES:
                pending.continuation.append(line)
                return []
            entry = self.parser.unparsed(line, self.parser.no_match_reason())
        entry.offset = offset
        done = self.flush()
        if self.parser.multiline and entry.parsed:
            self.pending = entry
        else:
            done.append(self.parser.finish(entry))
        return done

    def flush(self) -> list[LogEntry]:
        """The pending entry, completed: no more lines will join it."""
        if self.pending is None:
            return []
        entry, self.pending = self.pending, None
        return [self.parser.finish(entry)]
