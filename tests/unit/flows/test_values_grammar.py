"""Numeric and date text in stored values: the grammar both evaluators (Python and the segments' SQL)
read, so a value is a number or a date for one exactly when it is for the other."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from storeflow.flows.values import as_datetime, as_decimal


@pytest.mark.parametrize(("text", "expected"), [
    ("12", Decimal(12)), (" 12\t", Decimal(12)), ("-1.50", Decimal("-1.50")), (".5", Decimal("0.5")),
    ("1e3", Decimal("1e3")),
    ("\u0663", None),  # an Arabic-Indic digit: not ASCII
    ("\u00a012", None),  # a no-break space is not stripped
    ("12abc", None), ("", None),
])  # fmt: skip
def test_numeric_text_is_ascii_digits_with_ascii_space_around(text: str, expected: Decimal | None) -> None:
    assert as_decimal(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
    ("2026-01-31T10:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),
    ("2026-01-31 10:00:05.1234567Z", datetime(2026, 1, 31, 10, 0, 5, 123456, tzinfo=UTC)),
    ("2026-01-31t10:00:05+07:00", datetime(2026, 1, 31, 3, 0, 5, tzinfo=UTC)),
    ("2026-01-31T10", None),  # hours alone
    ("2026-01-31T10:00+0700", None),  # an offset without its colon
    ("2026-01-31T10:00+07", None),
    ("2026-01-31X10:00", None),  # another separator
    ("2026-02-30", None),  # no such day
    ("0001-01-01T00:00+01:00", None),  # before year 1 in UTC
])  # fmt: skip
def test_date_text_follows_one_grammar(text: str, expected: datetime | None) -> None:
    assert as_datetime(text) == expected
