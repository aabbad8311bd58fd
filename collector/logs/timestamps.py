"""Event times of log lines: profiles.yaml layouts, or a source's strptime format, to Unix nanoseconds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from collector.logs.profile import profile_book

_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_EPOCH_SCALE = {10: 1_000_000_000, 13: 1_000_000, 16: 1_000, 19: 1}
_FUTURE_SLACK = timedelta(days=1)


def _offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _fraction_ns(fraction: str | None, sep: str | None) -> int:
    if not fraction:
        return 0
    if sep == ":":  # HH:mm:ss:SSS written without padding (22:16:0:83): a count of milliseconds
        return int(fraction) * 1_000_000
    return int(fraction[:9].ljust(9, "0"))


def epoch_ns(value: float | int | str) -> int | None:
    """Nanoseconds from a Unix time in s, ms, us or ns (told apart by magnitude)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number <= 0:
        return None
    whole = str(int(number))
    scale = _EPOCH_SCALE.get(len(whole))
    if scale is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value) * scale
    return int(round(number * scale))


class TimestampParser:
    """Parses one source's timestamps; remembers which layout worked last (sources are consistent)."""

    def __init__(
        self,
        zone: str = "UTC",
        strptime_format: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.zone: tzinfo = UTC if zone == "UTC" else ZoneInfo(zone)
        self.strptime_format = strptime_format
        self.layouts = [re.compile(p) for p in profile_book().timestamp_layouts]
        self._last = 0
        self._now = now or (lambda: datetime.now(self.zone))

    def parse(self, text: str) -> int | None:
        """Unix nanoseconds, or None when no layout fits (the record then takes its observed time)."""
        text = text.strip()
        if self.strptime_format:
            return self._strptime(text)
        order = [self._last] + [i for i in range(len(self.layouts)) if i != self._last]
        for index in order:
            match = self.layouts[index].match(text)
            if match is None:
                continue
            value = self._from_groups(match.groupdict())
            if value is not None:
                self._last = index
                return value
        return None

    def _strptime(self, text: str) -> int | None:
        assert self.strptime_format is not None
        try:
            parsed = datetime.strptime(text, self.strptime_format)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        return int(parsed.replace(microsecond=0).timestamp()) * 1_000_000_000 + parsed.microsecond * 1000

    def _from_groups(self, g: dict[str, Any]) -> int | None:
        if g.get("epoch"):
            base = epoch_ns(g["epoch"])
            if base is None:
                return None
            return base + (_fraction_ns(g.get("fraction"), ".") if len(g["epoch"]) == 10 else 0)
        month = int(g["month"]) if g.get("month") else _MONTHS.get(str(g.get("monthname", "")).lower())
        if month is None:
            return None
        zone = _offset(g["tz"]) if g.get("tz") else self.zone
        try:
            fields = (month, int(g["day"]), int(g["hour"]), int(g["minute"]), int(g["second"]))
            if g.get("year"):
                moment = datetime(int(g["year"]), *fields, tzinfo=zone)
            else:
                moment = self._infer_year(fields, zone)
        except (ValueError, OverflowError):
            return None
        fraction = _fraction_ns(g.get("fraction"), g.get("sep"))
        if fraction >= 1_000_000_000:
            return None
        return int(moment.timestamp()) * 1_000_000_000 + fraction

    def _infer_year(self, fields: tuple[int, int, int, int, int], zone: tzinfo) -> datetime:
        """RFC 3164 has no year: the latest year that does not put the time over a day ahead of now."""
        now = self._now()
        for year in (now.year, now.year - 1):
            try:
                moment = datetime(year, *fields, tzinfo=zone)
            except ValueError:  # 29 February outside a leap year
                continue
            if moment <= now + _FUTURE_SLACK:
                return moment
        return datetime(now.year - 1, *fields, tzinfo=zone)
