"""Log profiles: the data in profiles.yaml, validated, and compiled for one configured log source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from triage.errors import ConfigError
from triage.settings import LogSource

# Groups that fill a record's own fields rather than attributes.
RESERVED_GROUPS = frozenset(
    {"timestamp", "severity", "message", "pri", "sd", "traceparent", "trace_id", "span_id", "trace_flags"}
)


def _compiles(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
    return patterns


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExtractRule(_Spec):
    source: str = Field(alias="from")
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        return _compiles([value])[0]


class ProfileSpec(_Spec):
    kind: Literal["text", "json"] | None = None
    extends: str | None = None
    multiline: bool | None = None
    nil_value: str | None = None
    patterns: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    extract: list[ExtractRule] = Field(default_factory=list)
    fields: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        return _compiles(value)


class ProfileBook(_Spec):
    """Everything profiles.yaml holds."""

    severity_numbers: dict[str, int]
    syslog_severities: list[str]
    syslog_facilities: list[str]
    timestamp_layouts: list[str]
    trace_context: list[str]
    attributes: dict[str, str]
    profiles: dict[str, ProfileSpec]

    @field_validator("timestamp_layouts", "trace_context")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        return _compiles(value)


@cache
def profile_book() -> ProfileBook:
    """The built-in profiles shipped beside this module."""
    text = resources.files("collector.logs").joinpath("profiles.yaml").read_text("utf-8")
    try:
        return ProfileBook.model_validate(yaml.safe_load(text))
    except Exception as exc:  # a broken shipped file is a packaging bug: say where
        raise ConfigError(f"collector/logs/profiles.yaml is invalid: {exc}") from exc


@dataclass(frozen=True)
class Profile:
    """A profile compiled for one source: its patterns, attribute names and extraction rules."""

    name: str
    kind: Literal["text", "json"]
    multiline: bool
    nil_value: str | None
    patterns: tuple[re.Pattern[str], ...]
    attributes: dict[str, str]
    extract: tuple[tuple[str, re.Pattern[str]], ...]
    fields: dict[str, tuple[str, ...]]

    def attribute_name(self, group: str) -> str:
        return self.attributes.get(group, group)


def _lineage(book: ProfileBook, name: str) -> list[ProfileSpec]:
    """The profile and the ones it extends, most specific first."""
    chain: list[ProfileSpec] = []
    current: str | None = name
    while current is not None:
        spec = book.profiles.get(current)
        if spec is None:
            raise ConfigError(f"log profile {current!r} is not defined in collector/logs/profiles.yaml")
        if spec in chain:
            raise ConfigError(f"log profile {name!r} extends itself through {current!r}")
        chain.append(spec)
        current = spec.extends
    return chain


def compile_profile(source: LogSource) -> Profile:
    """The source's profile: its own `pattern` first, then the profile's, with its attribute renames."""
    return _compile_cached(source.format, source.pattern, source.multiline, tuple(source.attributes.items()))


@cache
def _compile_cached(
    name: str, pattern: str | None, multiline: bool | None, renames: tuple[tuple[str, str], ...]
) -> Profile:
    book = profile_book()
    chain = _lineage(book, name)
    patterns = ([pattern] if pattern else []) + [p for spec in chain for p in spec.patterns]
    attributes = dict(book.attributes)
    fields: dict[str, tuple[str, ...]] = {}
    for spec in reversed(chain):
        attributes.update(spec.attributes)
        fields.update({role: tuple(keys) for role, keys in spec.fields.items()})
    attributes.update(dict(renames))
    default_multiline = next((s.multiline for s in chain if s.multiline is not None), False)
    return Profile(
        name=name,
        kind=next((s.kind for s in chain if s.kind is not None), "text"),
        multiline=default_multiline if multiline is None else multiline,
        nil_value=next((s.nil_value for s in chain if s.nil_value is not None), None),
        patterns=tuple(re.compile(p) for p in patterns),
        attributes=attributes,
        extract=tuple((rule.source, re.compile(rule.pattern)) for spec in chain for rule in spec.extract),
        fields=fields,
    )


def standalone_profiles() -> tuple[str, ...]:
    """The built-in profiles that parse lines with no pattern of a source's own (all but `regex`), by name."""
    book = profile_book()
    return tuple(
        sorted(
            name for name in book.profiles if any(spec.patterns or spec.kind == "json" for spec in _lineage(book, name))
        )
    )
