"""Schedules and date triggers across daylight-saving changes: computed on local wall-clock dates,
one fire per local occurrence, none skipped when clocks go forward, none doubled when they go back."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from storeflow.flows import DateTrigger, ScheduleTrigger, parse_field_path
from storeflow.flows.timing import (
    first_date_fire,
    localize,
    next_date_fire,
    next_schedule_time,
    schedule_occurrence,
)

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
BIRTHDAY = parse_field_path("profile.birthday")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(trigger: ScheduleTrigger, start: dt.datetime, end: dt.datetime, store_tz: str = "UTC") -> list[dt.datetime]:
    """Every fire from ``start`` to ``end``, each computed from the previous one (as the scheduler does)."""
    out: list[dt.datetime] = []
    now = start
    while True:
        now = next_schedule_time(trigger, now, store_tz=store_tz)
        if now > end:
            return out
        out.append(now)


def test_localize_gap_and_fold() -> None:
    # 2026-03-08: 02:00 EST becomes 03:00 EDT; 02:30 does not exist: the first instant after the gap.
    assert localize(dt.datetime(2026, 3, 8, 2, 30), NEW_YORK) == at(2026, 3, 8, 7, 0)
    assert localize(dt.datetime(2026, 3, 8, 3, 0), NEW_YORK) == at(2026, 3, 8, 7, 0)
    assert localize(dt.datetime(2026, 3, 8, 1, 59), NEW_YORK) == at(2026, 3, 8, 6, 59)
    # 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice: the first one (EDT) counts.
    assert localize(dt.datetime(2026, 11, 1, 1, 30), NEW_YORK) == at(2026, 11, 1, 5, 30)
    assert localize(dt.datetime(2026, 11, 1, 1, 30, fold=1), NEW_YORK) == at(2026, 11, 1, 5, 30)


def test_autumn_change_fires_once_per_local_day() -> None:
    trigger = ScheduleTrigger(schedule="30 1 * * *", timezone="America/New_York")
    got = fires(trigger, at(2026, 10, 30), at(2026, 11, 4))
    assert got == [at(2026, 10, 30, 5, 30), at(2026, 10, 31, 5, 30), at(2026, 11, 1, 5, 30),
                   at(2026, 11, 2, 6, 30), at(2026, 11, 3, 6, 30)]
    # The second 01:30 of 1 November (06:30 UTC) is the same local occurrence as the first.
    assert next_schedule_time(trigger, at(2026, 11, 1, 5, 30), store_tz="UTC") == at(2026, 11, 2, 6, 30)
    assert next_schedule_time(trigger, at(2026, 11, 1, 6, 0), store_tz="UTC") == at(2026, 11, 2, 6, 30)
    assert schedule_occurrence(trigger, at(2026, 11, 1, 5, 30), store_tz="UTC") == "2026-11-01T01:30"
    assert schedule_occurrence(trigger, at(2026, 11, 1, 6, 30), store_tz="UTC") == "2026-11-01T01:30"


def test_spring_change_fires_at_the_end_of_the_gap() -> None:
    trigger = ScheduleTrigger(schedule="30 2 * * *")  # the store's zone
    got = fires(trigger, at(2026, 3, 6), at(2026, 3, 10), store_tz="America/New_York")
    assert got == [at(2026, 3, 6, 7, 30), at(2026, 3, 7, 7, 30), at(2026, 3, 8, 7, 0), at(2026, 3, 9, 6, 30)]


def test_hourly_schedule_across_the_repeated_hour() -> None:
    trigger = ScheduleTrigger(schedule="0 * * * *", timezone="America/New_York")
    got = fires(trigger, at(2026, 11, 1, 3), at(2026, 11, 1, 9))
    # Local 00:00 EDT, 01:00 EDT, then 02:00 EST: the wall clock's 01:00 fires once.
    assert got == [at(2026, 11, 1, 4), at(2026, 11, 1, 5), at(2026, 11, 1, 7), at(2026, 11, 1, 8), at(2026, 11, 1, 9)]


@pytest.mark.parametrize("zone", ["America/New_York", "America/Sao_Paulo", "Asia/Jakarta", "Europe/Berlin"])
@pytest.mark.parametrize("time", ["30 1", "30 2", "0 0", "59 23"])
def test_a_daily_schedule_fires_once_on_every_local_day_of_2026(zone: str, time: str) -> None:
    trigger = ScheduleTrigger(schedule=f"{time} * * *", timezone=zone)
    tz = ZoneInfo(zone)
    got = fires(trigger, at(2025, 12, 31, 12), at(2027, 1, 1, 12))
    days = Counter(f.astimezone(tz).date() for f in got)
    every_day = {dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(365)}
    assert every_day <= set(days)
    assert all(n == 1 for n in days.values())
    minute, hour = (int(part) for part in time.split())
    off_time = [f for f in got if f.astimezone(tz).time() != dt.time(hour, minute)]
    # Only a time that the spring change skips moves (to the end of the gap), and only that day.
    assert len(off_time) <= 1


def test_zones_without_daylight_saving() -> None:
    sao_paulo = ScheduleTrigger(schedule="0 9 * * *", timezone="America/Sao_Paulo")  # UTC-3 all year
    assert {f.time() for f in fires(sao_paulo, at(2026, 1, 1), at(2027, 1, 1))} == {dt.time(12)}
    jakarta = ScheduleTrigger(schedule="0 9 * * *", timezone="Asia/Jakarta")  # UTC+7
    assert {f.time() for f in fires(jakarta, at(2026, 1, 1), at(2027, 1, 1))} == {dt.time(2)}


def test_date_trigger_late_in_the_day_and_in_the_gap() -> None:
    late = DateTrigger(date=BIRTHDAY, at=dt.time(23, 30))
    # 23:30 on 5 March in Jakarta is 16:30 UTC.
    assert next_date_fire(late, "1990-03-05", at(2026, 3, 1), profile_tz="Asia/Jakarta", store_tz="UTC") == (
        at(2026, 3, 5, 16, 30), "2026")
    gap = DateTrigger(date=BIRTHDAY, at=dt.time(2, 30))
    assert next_date_fire(gap, "1990-03-08", at(2026, 3, 1), profile_tz="America/New_York", store_tz="UTC") == (
        at(2026, 3, 8, 7, 0), "2026")
    fold = DateTrigger(date=BIRTHDAY, at=dt.time(1, 30))
    assert next_date_fire(fold, "1990-11-01", at(2026, 3, 1), profile_tz="America/New_York", store_tz="UTC") == (
        at(2026, 11, 1, 5, 30), "2026")


def test_first_date_fire_counts_earlier_today() -> None:
    trigger = DateTrigger(date=BIRTHDAY, at=dt.time(9))
    # 15:00 in Jakarta on the birthday: today's 09:00 (02:00 UTC) still counts, it is late, not missed.
    now = at(2026, 3, 5, 8)
    assert first_date_fire(trigger, "1990-03-05", now, profile_tz="Asia/Jakarta", store_tz="UTC") == (
        at(2026, 3, 5, 2), "2026")
    # Yesterday's does not: next year.
    assert first_date_fire(trigger, "1990-03-04", now, profile_tz="Asia/Jakarta", store_tz="UTC") == (
        at(2027, 3, 4, 2), "2027")


def test_leap_day_birthday_every_year() -> None:
    trigger = DateTrigger(date=BIRTHDAY, at=dt.time(9))
    got = []
    now = at(2026, 1, 1)
    for _ in range(4):
        found = next_date_fire(trigger, "1992-02-29", now, profile_tz=None, store_tz="UTC")
        assert found is not None
        got.append(found)
        now = found[0]
    assert got == [(at(2026, 2, 28, 9), "2026"), (at(2027, 2, 28, 9), "2027"), (at(2028, 2, 29, 9), "2028"),
                   (at(2029, 2, 28, 9), "2029")]
