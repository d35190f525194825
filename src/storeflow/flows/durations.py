"""Durations written the way people write them: ``30s``, ``15m``, ``1h``, ``2d``, ``1w``, ``1h30m``.

Numbers are never durations (is ``3600`` seconds or minutes?). Negative durations (``-3d``) are
accepted only where a flow allows them, such as the offset of a date trigger.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from storeflow.flows.problems import Loc, Problems, custom_error

_UNITS: Final[tuple[tuple[str, int], ...]] = (
    ("w", 7 * 86400),
    ("d", 86400),
    ("h", 3600),
    ("m", 60),
    ("s", 1),
)
_DURATION = re.compile(r"(-)?(?=\d)(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")

DURATION_PATTERN: Final = r"^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
"""JSON Schema pattern of an unsigned duration (ECMA 262 regex)."""
SIGNED_DURATION_PATTERN: Final = r"^-?(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
DURATION_HINT: Final = "use 1h, 30m or 2d"


class DurationError(ValueError):
    """Text that is not a duration, with a message and a hint for the user."""

    def __init__(self, message: str, hint: str = DURATION_HINT) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_duration(value: object, *, signed: bool = False) -> timedelta:
    """Parse ``"1h30m"`` into a timedelta. Raises DurationError (a ValueError)."""
    if isinstance(value, timedelta):
        if value < timedelta(0) and not signed:
            raise DurationError(f'"{format_duration(value)}" is not allowed', "durations cannot be negative here")
        return value
    if not isinstance(value, str):
        shown = "true/false" if isinstance(value, bool) else repr(value)
        raise DurationError(f"{shown} is not a duration", "write durations as text with a unit: 1h, 30m or 2d")
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()[1:]):
        raise DurationError(f'"{value}" is not a duration')
    if match.group(1) and not signed:
        raise DurationError(f'"{value}" is not allowed', "durations cannot be negative here")
    seconds = sum(int(part or 0) * size for part, (_, size) in zip(match.groups()[1:], _UNITS, strict=True))
    try:
        result = timedelta(seconds=seconds)
    except OverflowError:
        raise DurationError(f'"{value}" is too long', "durations must be shorter than a few thousand years") from None
    return -result if match.group(1) else result


def format_duration(value: timedelta) -> str:
    """The canonical text of a duration, without weeks: 90 minutes -> ``"1h30m"``, 7 days -> ``"7d"``."""
    if value.microseconds:
        raise ValueError("durations have whole seconds")
    if value < timedelta(0):
        return "-" + format_duration(-value)
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS[1:]:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def read_duration(
    value: Any,
    loc: Loc,
    problems: Problems,
    *,
    signed: bool = False,
    allow_zero: bool = False,
    maximum: timedelta | None = None,
) -> timedelta | None:
    """A duration from a document, or None after adding the problem to ``problems``."""
    try:
        result = parse_duration(value, signed=signed)
    except DurationError as exc:
        problems.add(loc, exc.message, exc.hint)
        return None
    if result == timedelta(0) and not allow_zero:
        problems.add(loc, f'"{value}" is not allowed', "the duration must be longer than 0s")
        return None
    if maximum is not None and result > maximum:
        problems.add(loc, f'"{value}" is too long', f"at most {format_duration(maximum)}")
        return None
    return result


def _validate_duration(value: Any) -> timedelta:
    try:
        result = parse_duration(value)
    except DurationError as exc:
        raise custom_error(exc.message, exc.hint) from None
    if result == timedelta(0):
        raise custom_error(f'"{value}" is not allowed', "the duration must be longer than 0s")
    return result


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "a duration: 30s, 15m, 1h, 2d, 1w, 1h30m",
        }
    ),
]
"""A positive duration field for pydantic models (action parameters): text in, timedelta out."""
