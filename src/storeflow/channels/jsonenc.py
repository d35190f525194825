"""Compact JSON for outbound bodies: Decimal as a string (no float rounding), datetimes as ISO-8601."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID


def dumps_compact(value: Any) -> str:
    """Serialize ``value`` as compact JSON text.

    Decimal -> string (``Decimal("19.90")`` -> ``"19.90"``), date/datetime/time -> ISO-8601 string,
    UUID -> string, Enum -> its value, any Mapping -> object. NaN and infinity are refused (they are
    not JSON). Raises TypeError or ValueError for anything else that JSON cannot represent.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
