"""Bounds on what an event may carry, checked before anything is built from it.

Every limit here is documented in docs/events.md. They exist so that one hostile or broken item
is refused on its own, with its field path, instead of burning CPU, failing its whole batch at
flush (a column overflow, a string the database cannot store) or being stored and then breaking
every later read.

The checks are cheap on purpose (ingest throughput matters): one pass over the properties with
type tests, ``str.isascii`` as the fast path for text, and no regular expressions.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

MAX_DEPTH = 16  # objects and arrays nested inside properties (or profile)
MAX_NODES = 5_000  # values in one event's properties (or profile), all levels together
MAX_KEY_CHARS = 200
MAX_TEXT_CHARS = 65_536  # one string value

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest ``occurred_at`` accepted (the latest is now plus ``max_future_skew_s``)."""


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored (a NUL character, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"contains a lone UTF-16 surrogate at character {exc.start}; "
                    "send text as valid Unicode (a surrogate pair must stay a pair)")
    return None


def check_text(value: str, where: str, max_chars: int = MAX_TEXT_CHARS) -> None:
    """Raise ValueError naming ``where`` if ``value`` is too long or cannot be stored."""
    if len(value) > max_chars:
        raise ValueError(f"{where}: text of {len(value)} characters is longer than the {max_chars} allowed")
    problem = text_problem(value)
    if problem:
        raise ValueError(f"{where}: {problem}")


class _Bad(Exception):
    """A problem found deep in a document; the path is built on the way out, only when needed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _scalar(value: Any) -> None:
    """Check one non-container value (raises _Bad)."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_TEXT_CHARS or not value.isascii() or "\x00" in value:
            try:
                check_text(value, "")
            except ValueError as exc:
                raise _Bad(str(exc).removeprefix(": ")) from None
    elif kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Bad(f"{_short(value)} is outside the 64-bit integer range; send very large numbers as strings")
    elif kind is float:
        if not math.isfinite(value):
            raise _Bad(f"{value!r} is not a number JSON can carry; use a finite number")
    elif value is None or kind is bool:
        return
    else:  # a subclass or another type from a Python caller (Decimal, Enum...)
        _other(value)


def _other(value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        _scalar(str(value))
    elif isinstance(value, int):
        _scalar(int(value))
    elif isinstance(value, float):
        _scalar(float(value))
    elif isinstance(value, Decimal) and not value.is_finite():
        raise _Bad(f"{value!r} is not a finite number")


def _walk(value: Any, depth: int, budget: list[int]) -> None:
    """Check a container and everything in it. ``budget`` counts the values still allowed."""
    if depth >= MAX_DEPTH:
        raise _Bad(f"nested more than {MAX_DEPTH} levels deep")
    budget[0] -= len(value)
    if budget[0] < 0:
        raise _Bad(f"more than {MAX_NODES} values in one object; send less data per event")
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                raise _Bad("keys must be strings")
            if len(key) > MAX_KEY_CHARS or not key.isascii() or "\x00" in key:
                try:
                    check_text(key, "", MAX_KEY_CHARS)
                except ValueError as exc:
                    bad = _Bad(str(exc).removeprefix(": "))
                    bad.path.append(" (a key)")
                    raise bad from None
            _child(item, depth, budget, key)
    else:
        for i, item in enumerate(value):
            _child(item, depth, budget, i)


def _child(item: Any, depth: int, budget: list[int], step: str | int) -> None:
    """Check one member of a container (its key or index is ``step``); a problem's path gains that
    step on its way out, formatted only then."""
    kind = type(item)
    if (kind is int and INT64_MIN <= item <= INT64_MAX) or item is None or kind is bool or (
            kind is str and len(item) <= MAX_TEXT_CHARS and item.isascii() and "\x00" not in item):
        return  # the common cases, checked inline
    try:
        if isinstance(item, dict | list | tuple):
            _walk(item, depth + 1, budget)
        else:
            _scalar(item)
    except _Bad as bad:
        bad.path.append(f"[{step}]" if isinstance(step, int) else f".{step}")
        raise


def _short(value: int) -> str:
    digits = len(str(abs(value))) if value.bit_length() < 10_000 else None
    return f"an integer of {digits} digits" if digits else "a very large integer"


def check_document(value: dict[str, Any], where: str) -> None:
    """Check a JSON object an event carries (properties, profile fields): depth, size, text,
    integer range, finite floats. Raises ValueError naming the first bad field's path."""
    try:
        _walk(value, 0, [MAX_NODES])
    except _Bad as bad:
        raise ValueError(f"{where}{''.join(reversed(bad.path))}: {bad.message}") from None


def check_occurred_at(value: datetime, latest: datetime, skew_s: float) -> datetime:
    """``value`` in aware UTC, or ValueError if it is before 1900 or after ``latest``.

    ``latest`` is now plus the allowed clock skew (``skew_s``, named in the message). The year is
    checked before the conversion to UTC, which overflows at the ends of the calendar.
    """
    if not 1900 <= value.year <= 9000:
        raise ValueError(f"occurred_at: {value.isoformat()} is not a plausible time; "
                         f"send a time from {EARLIEST.year} on, in ISO 8601 with an offset")
    at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if at < EARLIEST:
        raise ValueError(f"occurred_at: {value.isoformat()} is before {EARLIEST.date().isoformat()}; "
                         "send the time the event happened")
    if at > latest:
        ahead = (at - latest).total_seconds() + skew_s
        raise ValueError(f"occurred_at: {value.isoformat()} is {ahead:.0f} s in the future, beyond the "
                         f"{skew_s:g} s of clock skew allowed (max_future_skew_s); send the time the event "
                         "happened, with its UTC offset, from a clock that is set right")
    return at
