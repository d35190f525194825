"""When time-based parts of a flow fire: pure functions of the definition, an instant and time zones.

All results are aware UTC datetimes. Times are computed on local wall-clock dates, then placed on
the time line: a local time that does not exist (the hour skipped when clocks go forward) happens at
the first instant after the gap (02:30 on a spring-forward night is 03:00); a local time that
happens twice (the hour repeated when clocks go back) happens once, at its first occurrence.
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
_MAX_CRON_STEPS = 10_000  # candidates looked at past one instant: a minutely cron across a repeated hour is 60


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


def localize(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of the naive local wall-clock time ``wall`` in ``zone``: its first occurrence
    when it happens twice, the first instant after the gap when it does not happen at all."""
    wall = wall.replace(tzinfo=None, fold=0)
    first = wall.replace(tzinfo=zone).astimezone(_UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=1 reads the wall time with the offset after the change, fold=0 with the one
    # before, so the change lies between the two instants. The wall clock is monotonic on either
    # side of it: find, to the second, the first instant that reads at or past ``wall``.
    lo = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    hi = first
    if lo > hi:  # pragma: no cover - a gap always has the later offset larger
        lo, hi = hi, lo
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if hi.microsecond else hi


def local_to_utc(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The instant of wall-clock ``time`` on ``day`` in ``zone`` (see ``localize``)."""
    return localize(dt.datetime.combine(day, time), zone)


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


def schedule_zone(trigger: ScheduleTrigger, store_tz: str) -> ZoneInfo:
    """The zone a schedule's times are read in: its own, else the store's."""
    return zone_for(trigger.timezone, profile_tz=None, store_tz=store_tz)


def next_schedule_time(trigger: ScheduleTrigger, after: dt.datetime, *, store_tz: str) -> dt.datetime:
    """The first time of the schedule strictly after ``after``.

    The cron expression is matched against local wall-clock times, each of which fires once: on the
    night clocks go back, ``30 1 * * *`` fires at the first 01:30 only; on the night they go forward,
    ``30 2 * * *`` fires at the end of the gap (03:00) rather than not at all."""
    zone = schedule_zone(trigger, store_tz)
    after = utc(after)
    wall = after.astimezone(zone).replace(tzinfo=None, fold=0)
    times = croniter(trigger.schedule, wall)
    for _ in range(_MAX_CRON_STEPS):
        candidate: dt.datetime = times.get_next(dt.datetime)
        fire = localize(candidate, zone)
        if fire > after:
            return fire
    raise ValueError(f"schedule {trigger.schedule!r} has no time after {after.isoformat()}")  # pragma: no cover


def schedule_occurrence(trigger: ScheduleTrigger, fire: dt.datetime, *, store_tz: str) -> str:
    """The local wall-clock occurrence a schedule's fire at ``fire`` stands for, e.g.
    ``"2026-11-01T01:30"``: the same for both instants of a repeated local time, so a run started
    per occurrence starts once."""
    return utc(fire).astimezone(schedule_zone(trigger, store_tz)).strftime("%Y-%m-%dT%H:%M")


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


def next_date_fire(
    trigger: DateTrigger, value: Any, after: dt.datetime, *, profile_tz: str | None, store_tz: str
) -> tuple[dt.datetime, str] | None:
    """The first time strictly after ``after`` that a date trigger fires for a profile whose
    ``trigger.date`` property is ``value``, with the occurrence it stands for (the anniversary's
    year, or ``"once"``); None when it will not fire again (or ``value`` is no date).

    Yearly triggers fire on the anniversary (29 February: 28 February in other years) shifted by the
    offset, at ``trigger.at`` in the profile's zone.
    """
    day = date_value(value)
    if day is None:
        return None
    after = utc(after)
    zone = zone_for("profile", profile_tz=profile_tz, store_tz=store_tz)
    if trigger.repeat == "once":
        try:
            fire = local_to_utc(day + trigger.offset, trigger.at, zone)
        except OverflowError:
            return None
        return (fire, "once") if fire > after else None
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
            return fire, str(candidate_year)
    return None


def next_date_trigger_time(
    trigger: DateTrigger, value: Any, after: dt.datetime, *, profile_tz: str | None, store_tz: str
) -> dt.datetime | None:
    """The time of ``next_date_fire``: when the trigger next fires strictly after ``after``."""
    found = next_date_fire(trigger, value, after, profile_tz=profile_tz, store_tz=store_tz)
    return None if found is None else found[0]


def first_date_fire(
    trigger: DateTrigger, value: Any, now: dt.datetime, *, profile_tz: str | None, store_tz: str
) -> tuple[dt.datetime, str] | None:
    """The first fire on or after the profile's local today: for a date just set or changed, an
    occurrence earlier today (``at`` already passed) still counts and fires at once."""
    zone = zone_for("profile", profile_tz=profile_tz, store_tz=store_tz)
    midnight = local_to_utc(utc(now).astimezone(zone).date(), dt.time(0), zone)
    return next_date_fire(trigger, value, midnight - dt.timedelta(microseconds=1),
                          profile_tz=profile_tz, store_tz=store_tz)
