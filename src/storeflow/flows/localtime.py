"""Time zones, times of day (``"09:00"``) and local date-times as flows write them."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from storeflow.flows.problems import Loc, Problems, type_name
from storeflow.flows.values import parse_iso_datetime
from storeflow.flows.vocabulary import did_you_mean

_TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
TIME_OF_DAY_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises ValueError when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def is_timezone(name: str) -> bool:
    try:
        load_zone(name)
    except ValueError:
        return False
    return True


def read_timezone(value: Any, loc: Loc, problems: Problems, *, keywords: tuple[str, ...] = ()) -> str | None:
    """An IANA time zone name (or one of ``keywords`` such as "profile"); None after a problem."""
    if not isinstance(value, str) or not value.strip():
        problems.add(loc, f"must be a time zone name, not {type_name(value)}", 'e.g. "America/Sao_Paulo"')
        return None
    if value in keywords or is_timezone(value):
        return value
    by_lower = {name.lower(): name for name in _zone_names()}
    close = by_lower.get(value.lower())
    hint = f'did you mean "{close}"?' if close else did_you_mean(value, [*keywords, *_zone_names()], cutoff=0.7)
    if hint is None:
        hint = "use an IANA name such as Europe/Berlin" + (" or " + " or ".join(keywords) if keywords else "")
    problems.add(loc, f'unknown time zone "{value}"', hint)
    return None


def parse_time_of_day(value: Any) -> dt.time | None:
    """``"09:00"`` or ``"9:00"`` as a time; None for anything else."""
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str):
        return None
    match = _TIME_OF_DAY.fullmatch(value.strip())
    if match is None:
        return None
    return dt.time(int(match.group(1)), int(match.group(2)))


def read_time_of_day(value: Any, loc: Loc, problems: Problems) -> dt.time | None:
    parsed = parse_time_of_day(value)
    if parsed is None:
        shown = f'"{value}"' if isinstance(value, str) else type_name(value)
        problems.add(loc, f"{shown} is not a time of day", 'use 24-hour "HH:MM", e.g. "09:00" or "18:30"')
    return parsed


def format_time_of_day(value: dt.time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def read_local_datetime(value: Any, loc: Loc, problems: Problems) -> dt.datetime | None:
    """``"2026-12-24T09:00"`` (local, naive), ``"2026-12-24"`` (midnight) or with an offset (aware)."""
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0)
    if isinstance(value, dt.date):  # from a YAML loader that makes dates
        return dt.datetime(value.year, value.month, value.day)
    parsed = parse_iso_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        shown = f'"{value}"' if isinstance(value, str) else type_name(value)
        problems.add(loc, f"{shown} is not a date-time", 'use ISO 8601, e.g. "2026-12-24T09:00" or "2026-12-24"')
        return None
    return parsed.replace(microsecond=0)
