"""Segment statistics read from the profiles: the store's customers (unmerged profiles with an
order) ranked by recency, frequency or monetary value, and the ``meta`` row the statistics are
kept in (storeflow.segments.stats computes them)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, cast, func, literal, select

from storeflow.store.sql.common import TxBase
from storeflow.store.tables import meta, profiles

_CUSTOMER = and_(profiles.c.merged_into.is_(None), profiles.c.orders_count >= 1, profiles.c.last_order_at.is_not(None))


class SegmentStatsOps(TxBase):
    def count_customers(self) -> int:
        """How many unmerged profiles have an order."""
        return int(self.conn.execute(select(func.count()).select_from(profiles).where(_CUSTOMER)).scalar_one())

    def customer_values_at(self, metric: str, currency: str, ranks: Sequence[int]) -> dict[int, Any]:
        """The customers ranked by ``metric`` from the smallest value (ties by profile id), and the value
        at each of these 1-based ranks: "recency" ranks by time since the last order (the latest order
        first) and answers ``last_order_at``; "frequency" answers ``orders_count``; "monetary" answers
        the total spent in ``currency`` as a Decimal (0 without any)."""
        wanted = sorted({int(r) for r in ranks if int(r) >= 1})
        if not wanted:
            return {}
        p = profiles.c
        if metric == "recency":
            value: Any = p.last_order_at
            order: list[Any] = [p.last_order_at.desc(), p.id]
        elif metric == "frequency":
            value = p.orders_count
            order = [p.orders_count, p.id]
        elif metric == "monetary":
            value = func.coalesce(p.total_spent[currency].as_string(), literal("0"))
            order = [cast(value, Numeric), p.id]
        else:
            raise ValueError(f"unknown metric {metric!r}; use recency, frequency or monetary")
        ranked = select(value.label("v"), func.row_number().over(order_by=order).label("rn")).where(_CUSTOMER)
        sub = ranked.subquery()
        rows = self.conn.execute(select(sub.c.rn, sub.c.v).where(sub.c.rn.in_(wanted)))
        out: dict[int, Any] = {}
        for rn, v in rows:
            out[int(rn)] = Decimal(str(v)) if metric == "monetary" else v
        return out

    def set_meta_value(self, key: str, value: str) -> bool:
        """Store ``value`` under ``key`` in ``meta``; whether it differs from what was stored."""
        current = self.conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
        if current == value:
            return False
        stmt = self.upsert(meta).values(key=key, value=value)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
        return True
