"""Value coercions shared by parsing and evaluation: exact decimals and aware date-times."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from storeflow.clock import utc

_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""Numeric text: ASCII digits only (``\\d`` would also take other scripts' digits, which SQL does not)."""
_ISO_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
"""Date and date-time text a stored value may hold: ``YYYY-MM-DD``, optionally followed by ``T``
(or ``t`` or a space) ``HH:MM[:SS[.fraction]]`` and ``Z`` or ``+HH:MM``. The SQL compiler of
segments reads exactly this grammar, so both evaluators agree on what is a date."""
_SPACE = " \t\n\r\v\f"
"""The whitespace around numeric and date text that is ignored (ASCII only, as in SQL)."""


def is_number(value: Any) -> bool:
    """A real number (not a bool, not text)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def as_decimal(value: Any) -> Decimal | None:
    """int, float, Decimal or numeric text as an exact Decimal; None for anything else.

    Floats go through their shortest repr, so ``0.1`` becomes ``Decimal("0.1")``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        text = value.strip(_SPACE)
        if _NUMERIC.fullmatch(text):
            try:
                return Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern only lets valid numbers through
                return None
    return None


def as_datetime(value: Any) -> datetime | None:
    """A datetime, date or ISO 8601 text (the grammar of ``_ISO_INSTANT``) as an aware UTC
    datetime; None for anything else.

    Naive values are taken as UTC; a date is midnight UTC.
    """
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip(_SPACE)
        if not _ISO_INSTANT.fullmatch(text):
            return None
        try:
            return utc(datetime.fromisoformat(text))
        except (ValueError, OverflowError):  # no such day; or out of range once moved to UTC
            return None
    return None


def parse_iso_datetime(text: str) -> datetime | None:
    """ISO 8601 date or date-time text as a datetime as written (naive when it has no offset)."""
    if not _ISO_DATE_START.match(text.strip()):
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def to_json_value(value: Any) -> Any:
    """``value`` as plain JSON data: dates and date-times become ISO text, tuples lists; Decimal is
    kept (exact). Raises ValueError for anything else (sets, bytes, NaN, objects)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | Decimal):
        if as_decimal(value) is None:
            raise ValueError("not a finite number")
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("mapping keys must be text")
        return {key: to_json_value(item) for key, item in value.items()}
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def decimal_to_json(value: Decimal) -> int | float:
    """A Decimal as the JSON number a user would write: whole numbers as int, others as float."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)
