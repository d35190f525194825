from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from types import MappingProxyType

import pytest

from storeflow.jsonenc import dumps as dumps_compact


class Tier(enum.Enum):
    GOLD = "gold"


def test_compact_and_typed_values() -> None:
    body = {
        "total": Decimal("19.90"),
        "at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
        "day": date(2026, 1, 5),
        "time": time(9, 30),
        "id": uuid.UUID(int=1),
        "tier": Tier.GOLD,
        "meta": MappingProxyType({"a": [1, 2.5, None, True]}),
        "name": "Zoë",
    }
    text = dumps_compact(body)
    assert " " not in text.replace("Zoë", "")
    assert json.loads(text) == {
        "total": "19.90",
        "at": "2026-01-05T09:30:00+00:00",
        "day": "2026-01-05",
        "time": "09:30:00",
        "id": "00000000-0000-0000-0000-000000000001",
        "tier": "gold",
        "meta": {"a": [1, 2.5, None, True]},
        "name": "Zoë",
    }


@pytest.mark.parametrize("bad", [object(), float("nan"), float("inf"), b"bytes"])
def test_unrepresentable_values_raise(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        dumps_compact({"x": bad})


def test_sets_and_tuples_become_arrays() -> None:
    assert dumps_compact({"t": (1, 2), "s": frozenset({3})}) == '{"t":[1,2],"s":[3]}'
