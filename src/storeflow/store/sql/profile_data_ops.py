"""One profile's collections as the Python condition evaluator reads them (``ProfileData``, see
storeflow.engine.records.StoreProfileData): every order, cart and message of the profile."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storeflow.store.sql.common import TxBase
from storeflow.store.tables import carts, orders, outbox


class ProfileDataOps(TxBase):
    def orders_of_profile(self, profile_id: str) -> list[dict[str, Any]]:
        """Every order of the profile, oldest first."""
        rows = self.conn.execute(select(orders).where(orders.c.profile_id == profile_id)
                                 .order_by(orders.c.placed_at, orders.c.id))
        return [dict(r) for r in rows.mappings()]

    def carts_of_profile(self, profile_id: str) -> list[dict[str, Any]]:
        """Every cart and checkout of the profile (converted ones too), oldest activity first."""
        rows = self.conn.execute(select(carts).where(carts.c.profile_id == profile_id)
                                 .order_by(carts.c.last_activity_at, carts.c.id))
        return [dict(r) for r in rows.mappings()]

    def messages_of_profile(self, profile_id: str, channel: str | None) -> list[dict[str, Any]]:
        """Every message (outbox row) to the profile, on ``channel`` or on any channel for None,
        oldest first."""
        q = select(outbox).where(outbox.c.profile_id == profile_id)
        if channel is not None:
            q = q.where(outbox.c.channel == channel)
        rows = self.conn.execute(q.order_by(outbox.c.created_at, outbox.c.id))
        return [dict(r) for r in rows.mappings()]
