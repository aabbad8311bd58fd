"""How numbers, money, times and durations read on a dashboard and in the report."""

from __future__ import annotations

from datetime import UTC, datetime

from triage.durations import format_duration


def money(value: float) -> str:
    """$950, $182k, $4.2M."""
    if abs(value) >= 1e6:
        return f"${value / 1e6:,.1f}M"
    if abs(value) >= 1e4:
        return f"${value / 1e3:,.0f}k"
    return f"${value:,.0f}"


def count(value: int) -> str:
    return f"{value:,}"


def plural(n: int, noun: str) -> str:
    """'1 transaction', '3 transactions'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def duration(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(max(seconds, 0))


def latency(seconds: float | None) -> str:
    """'85 ms' under a second, else as a duration."""
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else format_duration(seconds)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: datetime | None, now: datetime | None = None) -> str:
    """'09:12 UTC' today, 'Nov 21 09:12 UTC' otherwise; '—' for none."""
    value = utc(value)
    if value is None or value.year < 1971:
        return "—"
    now = now or datetime.now(UTC)
    return f"{value:%H:%M} UTC" if value.date() == now.date() else f"{value:%b %d %H:%M} UTC"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago: '6h 5m'."""
    value = utc(value)
    if value is None or value.year < 1971:
        return "—"
    return format_duration(max(((now or datetime.now(UTC)) - value).total_seconds(), 0))


def until(value: datetime | None, now: datetime | None = None) -> str:
    """How long from now: '12m'; 'passed' once it is past, '—' for none."""
    value = utc(value)
    if value is None or value.year < 1971:
        return "—"
    left = (value - (now or datetime.now(UTC))).total_seconds()
    return format_duration(left) if left > 0 else "passed"


def label(name: str) -> str:
    """procure_to_pay → Procure to pay."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else name
