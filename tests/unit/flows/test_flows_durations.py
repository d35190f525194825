from datetime import timedelta

import pytest

from storeflow.flows import DurationError, format_duration, parse_duration
from storeflow.flows.durations import read_duration
from storeflow.flows.problems import Problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("90m", timedelta(minutes=90)),
        ("0s", timedelta(0)),
    ],
)
def test_good_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["1 hr", "", "h", "1.5h", "30", "1m1h", "1h 30m", "1H", " 1h", "1d1d", "P1D"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert info.value.message == f'"{text}" is not a duration'
    assert info.value.hint == "use 1h, 30m or 2d"


@pytest.mark.parametrize("value", [30, 1.5, True, None, ["1h"]])
def test_numbers_and_other_types_are_not_durations(value: object) -> None:
    with pytest.raises(DurationError, match="is not a duration") as info:
        parse_duration(value)
    assert "unit" in info.value.hint


def test_negative_only_when_signed() -> None:
    assert parse_duration("-3d", signed=True) == timedelta(days=-3)
    with pytest.raises(DurationError, match="not allowed"):
        parse_duration("-3d")


def test_duration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=7), "7d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(0), "0s"),
        (timedelta(days=-3), "-3d"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text, signed=True) == value


def test_format_rejects_fractions_of_seconds() -> None:
    with pytest.raises(ValueError, match="whole seconds"):
        format_duration(timedelta(milliseconds=5))


def test_read_duration_checks_zero_and_maximum() -> None:
    problems = Problems()
    assert read_duration("0s", ("wait",), problems) is None
    assert read_duration("2m", ("timeout",), problems, maximum=timedelta(seconds=60)) is None
    assert read_duration("0d", ("offset",), problems, allow_zero=True) == timedelta(0)
    assert [(loc, msg) for loc, msg, _, _ in problems.items] == [
        (("wait",), '"0s" is not allowed'),
        (("timeout",), '"2m" is too long'),
    ]


def test_huge_duration_is_reported_not_crashing() -> None:
    with pytest.raises(DurationError, match="too long"):
        parse_duration("99999999999999w")
