"""The one JSON encoding storeflow uses (database documents, API responses, webhook bodies).

Decimal becomes a string (exact money: ``Decimal("19.90")`` -> ``"19.90"``, never a float),
date/datetime/time become ISO-8601, UUID a string, Enum its value, any Mapping an object, sets
and tuples arrays. NaN and infinity are refused: they are not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID


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
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON text."""
    return json.dumps(value, default=_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
