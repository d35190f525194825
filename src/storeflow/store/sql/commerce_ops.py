"""Current store state: products, variants, stock, orders, carts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, select, update

from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import carts, orders, products, stock_levels, variants

STOCK_MAX = 2**31 - 1
"""The stock column's range (a 32-bit integer on PostgreSQL): sums of deltas saturate at ±STOCK_MAX."""


class CommerceOps(TxBase):
    # -- products ------------------------------------------------------------------------------
    def get_product(self, product_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(products).where(products.c.id == product_id)).mappings().first())

    def upsert_product(self, product_id: str, now: datetime, source_at: datetime, **values: Any) -> bool:
        """Create or update a product; an update older than what is stored is ignored. True if applied."""
        current = self.get_product(product_id)
        if current is None:
            row: dict[str, Any] = {"id": product_id, "status": "published", "tags": [], "properties": {}, "title": None,
                   "created_at": now, "updated_at": now, "source_updated_at": source_at}
            row.update(values)
            self.conn.execute(products.insert().values(**row))
            return True
        if current["source_updated_at"] is not None and source_at < current["source_updated_at"]:
            return False
        self.conn.execute(
            update(products).where(products.c.id == product_id)
            .values(updated_at=now, source_updated_at=source_at, **values)
        )
        return True

    def upsert_variant(self, variant_id: str, product_id: str, now: datetime, **values: Any) -> None:
        stmt = self.upsert(variants).values(id=variant_id, product_id=product_id, updated_at=now, **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["id"],
                                                     set_={"product_id": product_id, "updated_at": now, **values}))

    def get_variant(self, variant_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(variants).where(variants.c.id == variant_id)).mappings().first())

    def variant_by_sku(self, sku: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(variants).where(variants.c.sku == sku).limit(1)).mappings().first())

    def product_variants(self, product_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(variants).where(variants.c.product_id == product_id).order_by(variants.c.id))
        return [dict(r) for r in rows.mappings()]

    # -- stock ---------------------------------------------------------------------------------
    def product_stock(self, product_id: str) -> int:
        total = self.conn.execute(
            select(func.coalesce(func.sum(stock_levels.c.quantity), 0))
            .select_from(stock_levels.join(variants, variants.c.id == stock_levels.c.variant_id))
            .where(variants.c.product_id == product_id)
        ).scalar_one()
        return int(total)

    def set_stock(self, variant_id: str, location: str, now: datetime, source_at: datetime, *,
                  quantity: int | None = None, delta: int | None = None) -> bool:
        """Absolute quantities older than the stored one are ignored; deltas always apply."""
        row = self.conn.execute(
            select(stock_levels).where(stock_levels.c.variant_id == variant_id, stock_levels.c.location == location)
        ).mappings().first()
        if row is None:
            qty = quantity if quantity is not None else max(-STOCK_MAX, min(STOCK_MAX, int(delta or 0)))
            self.conn.execute(stock_levels.insert().values(variant_id=variant_id, location=location, quantity=qty,
                                                           source_updated_at=source_at, updated_at=now))
            return True
        values: dict[str, Any] = {"updated_at": now}
        if quantity is not None:
            if row["source_updated_at"] is not None and source_at < row["source_updated_at"]:
                return False
            values.update(quantity=quantity, source_updated_at=source_at)
        else:
            # Each event's delta is bounded, but their sum is not: it saturates at the column's range
            # (computed in 64 bits) instead of overflowing the integer and failing the batch.
            total = cast(stock_levels.c.quantity, BigInteger) + int(delta or 0)
            values["quantity"] = case((total > STOCK_MAX, STOCK_MAX), (total < -STOCK_MAX, -STOCK_MAX), else_=total)
        self.conn.execute(
            update(stock_levels)
            .where(stock_levels.c.variant_id == variant_id, stock_levels.c.location == location).values(**values)
        )
        return True

    # -- orders --------------------------------------------------------------------------------
    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(orders).where(orders.c.id == order_id)).mappings().first())

    def insert_order(self, row: dict[str, Any]) -> None:
        self.conn.execute(orders.insert().values(**row))

    def update_order(self, order_id: str, **values: Any) -> None:
        self.conn.execute(update(orders).where(orders.c.id == order_id).values(**values))

    def profile_orders(self, profile_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(orders).where(orders.c.profile_id == profile_id).order_by(orders.c.placed_at.desc()).limit(limit)
        )
        return [dict(r) for r in rows.mappings()]

    # -- carts ---------------------------------------------------------------------------------
    def get_cart(self, cart_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(carts).where(carts.c.id == cart_id)).mappings().first())

    def insert_cart(self, row: dict[str, Any]) -> None:
        self.conn.execute(carts.insert().values(**row))

    def update_cart(self, cart_id: str, **values: Any) -> None:
        self.conn.execute(update(carts).where(carts.c.id == cart_id).values(**values))

    def latest_open_cart(self, profile_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(carts).where(carts.c.profile_id == profile_id, carts.c.converted_at.is_(None))
            .order_by(carts.c.last_activity_at.desc()).limit(1)
        ).mappings().first())

    def convert_carts(self, profile_id: str | None, cart_ids: list[str], order_id: str, at: datetime) -> int:
        q = update(carts).where(carts.c.converted_at.is_(None))
        if cart_ids:
            q = q.where(carts.c.id.in_(cart_ids) | (carts.c.profile_id == profile_id)
                        if profile_id else carts.c.id.in_(cart_ids))
        elif profile_id:
            q = q.where(carts.c.profile_id == profile_id, carts.c.last_activity_at <= at)
        else:
            return 0
        return int(self.conn.execute(q.values(converted_at=at, order_id=order_id)).rowcount)
