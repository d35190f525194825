"""Time computations for wait_until, schedules and date triggers."""

import datetime as dt

from storeflow.flows import (
    DateTrigger,
    ScheduleTrigger,
    WaitUntilStep,
    next_date_trigger_time,
    next_schedule_time,
    parse_field_path,
    wait_until_deadline,
    zone_for,
)

UTC = dt.UTC
BIRTHDAY = parse_field_path("profile.birthday")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_zone_for() -> None:
    assert str(zone_for("profile", profile_tz="Asia/Tokyo", store_tz="UTC")) == "Asia/Tokyo"
    assert str(zone_for("profile", profile_tz=None, store_tz="Europe/Berlin")) == "Europe/Berlin"
    assert str(zone_for("profile", profile_tz="Not/AZone", store_tz="Europe/Berlin")) == "Europe/Berlin"
    assert str(zone_for("store", profile_tz="Asia/Tokyo", store_tz="UTC")) == "UTC"
    assert str(zone_for(None, profile_tz="Asia/Tokyo", store_tz="UTC")) == "UTC"
    assert str(zone_for("America/Sao_Paulo", profile_tz=None, store_tz="UTC")) == "America/Sao_Paulo"


def test_wait_until_time_of_day() -> None:
    step = WaitUntilStep(time=dt.time(9), timezone="profile")
    # 2026-01-05 is a Monday. Sao Paulo is UTC-3.
    now = at(2026, 1, 5, 11, 0)  # 08:00 in Sao Paulo
    assert wait_until_deadline(step, now, profile_tz="America/Sao_Paulo", store_tz="UTC") == at(2026, 1, 5, 12)
    now = at(2026, 1, 5, 13, 0)  # 10:00 in Sao Paulo: tomorrow
    assert wait_until_deadline(step, now, profile_tz="America/Sao_Paulo", store_tz="UTC") == at(2026, 1, 6, 12)
    exactly = at(2026, 1, 5, 9)
    assert wait_until_deadline(step, exactly, profile_tz=None, store_tz="UTC") == exactly


def test_wait_until_days() -> None:
    step = WaitUntilStep(time=dt.time(9), days=("mon", "fri"), timezone="store")
    tuesday = at(2026, 1, 6, 8)
    assert wait_until_deadline(step, tuesday, profile_tz="Asia/Tokyo", store_tz="UTC") == at(2026, 1, 9, 9)
    friday_late = at(2026, 1, 9, 10)
    assert wait_until_deadline(step, friday_late, profile_tz=None, store_tz="UTC") == at(2026, 1, 12, 9)


def test_wait_until_across_dst() -> None:
    step = WaitUntilStep(time=dt.time(9), timezone="Europe/Berlin")
    # Clocks go forward on 2026-03-29 in Berlin: 09:00 is 08:00 UTC before and 07:00 UTC after.
    assert wait_until_deadline(step, at(2026, 3, 28, 9), profile_tz=None, store_tz="UTC") == at(2026, 3, 29, 7)
    gap = WaitUntilStep(time=dt.time(2, 30), timezone="Europe/Berlin")  # does not exist that night
    # The first instant after the gap: 03:00 CEST, as schedules and date triggers do.
    assert wait_until_deadline(gap, at(2026, 3, 29, 0), profile_tz=None, store_tz="UTC") == at(2026, 3, 29, 1, 0)


def test_wait_until_at() -> None:
    local = WaitUntilStep(at=dt.datetime(2026, 12, 24, 9), timezone="store")
    assert wait_until_deadline(local, at(2026, 1, 1), profile_tz=None, store_tz="America/Sao_Paulo") == at(
        2026, 12, 24, 12
    )
    aware = WaitUntilStep(at=dt.datetime(2026, 12, 24, 9, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert wait_until_deadline(aware, at(2026, 1, 1), profile_tz="Asia/Tokyo", store_tz="UTC") == at(2026, 12, 24, 7)


def test_next_schedule_time() -> None:
    trigger = ScheduleTrigger(schedule="0 9 * * *", timezone="America/Sao_Paulo")
    assert next_schedule_time(trigger, at(2026, 1, 5, 11), store_tz="UTC") == at(2026, 1, 5, 12)
    assert next_schedule_time(trigger, at(2026, 1, 5, 12), store_tz="UTC") == at(2026, 1, 6, 12)  # strictly after
    store = ScheduleTrigger(schedule="@hourly")
    assert next_schedule_time(store, at(2026, 1, 5, 11, 30), store_tz="Asia/Kolkata") == at(2026, 1, 5, 12, 30)


def test_next_date_trigger_time_yearly_with_offset() -> None:
    trigger = DateTrigger(date=BIRTHDAY, offset=dt.timedelta(days=-3), at=dt.time(9))
    fire = next_date_trigger_time(trigger, "1990-05-17", at(2026, 1, 1), profile_tz="America/Sao_Paulo", store_tz="UTC")
    assert fire == at(2026, 5, 14, 12)
    after_fire = next_date_trigger_time(
        trigger, dt.date(1990, 5, 17), fire, profile_tz="America/Sao_Paulo", store_tz="UTC"
    )
    assert after_fire == at(2027, 5, 14, 12)
    early = DateTrigger(date=BIRTHDAY, offset=dt.timedelta(days=-3))
    assert next_date_trigger_time(early, "2000-01-02", at(2026, 6, 1), profile_tz=None, store_tz="UTC") == at(
        2026, 12, 30, 9
    )


def test_next_date_trigger_time_leap_day_and_once() -> None:
    trigger = DateTrigger(date=BIRTHDAY)
    leap = dt.datetime(1992, 2, 29, 15, 0)
    assert next_date_trigger_time(trigger, leap, at(2026, 1, 1), profile_tz=None, store_tz="UTC") == at(2026, 2, 28, 9)
    assert next_date_trigger_time(trigger, "2028-02-29", at(2028, 1, 1), profile_tz=None, store_tz="UTC") == at(
        2028, 2, 29, 9
    )
    once = DateTrigger(date=parse_field_path("profile.renewal_date"), offset=dt.timedelta(days=-7), repeat="once")
    assert next_date_trigger_time(once, "2026-09-08", at(2026, 1, 1), profile_tz=None, store_tz="UTC") == at(
        2026, 9, 1, 9
    )
    assert next_date_trigger_time(once, "2026-09-08", at(2026, 9, 2), profile_tz=None, store_tz="UTC") is None
    assert next_date_trigger_time(trigger, "not a date", at(2026, 1, 1), profile_tz=None, store_tz="UTC") is None
    assert next_date_trigger_time(trigger, None, at(2026, 1, 1), profile_tz=None, store_tz="UTC") is None
