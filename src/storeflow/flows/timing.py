"""When time-based parts of a flow fire: pure functions of the definition, an instant and time zones.

All results are aware UTC datetimes. Local times that do not exist (the hour skipped when clocks go
forward) move forward by the gap; ambiguous local times (the hour repeated when clocks go back) take
the first occurrence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from storeflow.clock import utc
from storeflow.flows.localtime import load_zone
from storeflow.flows.steps import WaitUntilStep
from storeflow.flows.triggers import DateTrigger, ScheduleTrigger
from storeflow.flows.vocabulary import WEEKDAYS

_UTC = dt.UTC


def zone_for(spec: str | None, *, profile_tz: str | None, store_tz: str) -> ZoneInfo:
    """The zone a flow means by ``spec``: "profile" (the profile's zone, or the store's when the profile
    has none or an unknown one), "store" or None (the store's), or an IANA name."""
    if spec == "profile" and profile_tz:
        try:
            return load_zone(profile_tz)
        except ValueError:
            pass
    if spec in (None, "store", "profile"):
        return load_zone(store_tz)
    return load_zone(spec)


def local_to_utc(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The instant of wall-clock ``time`` on ``day`` in ``zone``."""
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(_UTC)


def wait_until_deadline(step: WaitUntilStep, now: dt.datetime, *, profile_tz: str | None, store_tz: str) -> dt.datetime:
    """When a run that reaches ``step`` at ``now`` goes on: the next ``time`` of day (at or after
    ``now``) on an allowed day, or the ``at`` date-time (possibly already past: go on at once)."""
    now = utc(now)
    zone = zone_for(step.timezone, profile_tz=profile_tz, store_tz=store_tz)
    if step.at is not None:
        if step.at.tzinfo is not None:
            return step.at.astimezone(_UTC)
        return local_to_utc(step.at.date(), step.at.time(), zone)
    if step.time is None:  # pragma: no cover - the parser guarantees time or at
        raise ValueError("wait_until needs time or at")
    today = now.astimezone(zone).date()
    for ahead in range(8):
        day = today + dt.timedelta(days=ahead)
        if step.days is not None and WEEKDAYS[day.weekday()] not in step.days:
            continue
        candidate = local_to_utc(day, step.time, zone)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: every week has an allowed day")  # pragma: no cover


def next_schedule_time(trigger: ScheduleTrigger, after: dt.datetime, *, store_tz: str) -> dt.datetime:
    """The first time of the schedule strictly after ``after``."""
    zone = zone_for(trigger.timezone, profile_tz=None, store_tz=store_tz)
    start = utc(after).astimezone(zone)
    return croniter(trigger.schedule, start).get_next(dt.datetime).astimezone(_UTC)


def date_value(value: Any) -> dt.date | None:
    """The calendar date in a profile property: a date, a datetime or ISO text; None otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _in_year(day: dt.date, year: int) -> dt.date | None:
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        return None
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a year that has none
        return dt.date(year, 2, 28)


def next_date_trigger_time(
    trigger: DateTrigger, value: Any, after: dt.datetime, *, profile_tz: str | None, store_tz: str
) -> dt.datetime | None:
    """The first time strictly after ``after`` that a date trigger fires for a profile whose
    ``trigger.date`` property is ``value``; None when it will not fire again (or ``value`` is no date).

    Yearly triggers fire on the anniversary (29 February: 28 February in other years) shifted by the
    offset, at ``trigger.at`` in the profile's zone.
    """
    day = date_value(value)
    if day is None:
        return None
    after = utc(after)
    zone = zone_for("profile", profile_tz=profile_tz, store_tz=store_tz)
    if trigger.repeat == "once":
        fire = local_to_utc(day + trigger.offset, trigger.at, zone)
        return fire if fire > after else None
    spread = abs(trigger.offset.days) // 365 + 2
    year = after.astimezone(zone).year
    for candidate_year in range(year - spread, year + spread + 1):
        anniversary = _in_year(day, candidate_year)
        if anniversary is None:
            continue
        try:
            fire = local_to_utc(anniversary + trigger.offset, trigger.at, zone)
        except OverflowError:
            continue
        if fire > after:
            return fire
    return None
