"""Store-wide segment statistics: the cut points RFM scores and "top N %" conditions compare with.

They are computed from the store's customers with at least one order (``storeflow.segments.stats``)
and stored as JSON in the ``meta`` table under ``"segment_stats"``; the Python evaluator and the SQL
compiler read the same frozen object, so both score a profile alike.

Scoring, shared by both evaluators:

- recency: ``days = (now - last_order_at)`` as a duration; score 5 if ``days <= recency[0]``, 4 if
  ``<= recency[1]``, 3 if ``<= recency[2]``, 2 if ``<= recency[3]``, else 1;
- frequency: ``orders_count``; monetary: ``total_spent[currency]`` (0 when absent); score is
  ``1 +`` the number of cut points the value is strictly greater than;
- ``top: {metric, percent: N}``: the profile has an order and its value ``>= percentiles[100 - N - 1]``
  (the (100 - N)th percentile; ``percentiles`` holds the 1st to the 99th).

A profile without an order has no scores: every rfm and top condition is false for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from storeflow.flows.values import decimal_to_json


@dataclass(frozen=True)
class SegmentStats:
    """Cut points over the store's customers with an order (see the module docstring)."""

    currency: str
    recency: tuple[timedelta, timedelta, timedelta, timedelta]
    frequency: tuple[int, int, int, int]
    monetary: tuple[Decimal, Decimal, Decimal, Decimal]
    monetary_percentiles: tuple[Decimal, ...] = field(default=())  # 99 values: 1st..99th
    frequency_percentiles: tuple[int, ...] = field(default=())  # 99 values: 1st..99th
    customers: int = 0  # how many customers the cut points were computed over

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict; ``from_json`` reads it back."""
        return {
            "currency": self.currency,
            "recency_s": [int(d.total_seconds()) for d in self.recency],
            "frequency": list(self.frequency),
            "monetary": [decimal_to_json(m) for m in self.monetary],
            "monetary_percentiles": [decimal_to_json(m) for m in self.monetary_percentiles],
            "frequency_percentiles": list(self.frequency_percentiles),
            "customers": self.customers,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentStats:
        r = [timedelta(seconds=int(s)) for s in data["recency_s"]]
        f = [int(v) for v in data["frequency"]]
        m = [Decimal(str(v)) for v in data["monetary"]]
        return cls(
            currency=str(data["currency"]),
            recency=(r[0], r[1], r[2], r[3]),
            frequency=(f[0], f[1], f[2], f[3]),
            monetary=(m[0], m[1], m[2], m[3]),
            monetary_percentiles=tuple(Decimal(str(v)) for v in data.get("monetary_percentiles", ())),
            frequency_percentiles=tuple(int(v) for v in data.get("frequency_percentiles", ())),
            customers=int(data.get("customers", 0)),
        )


def recency_score(since_last_order: timedelta, stats: SegmentStats) -> int:
    """The recency score (5 most recent .. 1) of a customer whose last order was this long ago."""
    for score, cut in zip((5, 4, 3, 2), stats.recency, strict=True):
        if since_last_order <= cut:
            return score
    return 1


def value_score(value: Decimal | int, cuts: tuple[Any, ...]) -> int:
    """The frequency or monetary score: 1 + the number of cut points ``value`` is greater than."""
    return 1 + sum(1 for cut in cuts if value > cut)


def top_cut(stats: SegmentStats, metric: str, percent: int) -> Decimal | int | None:
    """The value a customer needs (``>=``) to be in the top ``percent`` % by ``metric``; None when the
    statistics have no percentiles (no customers yet)."""
    values: tuple[Any, ...] = stats.monetary_percentiles if metric == "monetary" else stats.frequency_percentiles
    if len(values) != 99 or not 1 <= percent <= 99:
        return None
    result: Decimal | int = values[100 - percent - 1]
    return result


__all__ = ["SegmentStats", "recency_score", "top_cut", "value_score"]
