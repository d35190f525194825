"""Message records beyond delivery: provider callbacks, engagement, suppressions, and meta values."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from storeflow.store.sql.bulk_ops import CHUNK
from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import meta, outbox, suppressions


class MessagesOps(TxBase):
    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(outbox).where(outbox.c.provider_id == provider_id)).mappings().first())

    def list_messages(self, *, profile_id: str | None = None, flow_id: str | None = None,
                      status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = select(outbox)
        if profile_id:
            q = q.where(outbox.c.profile_id == profile_id)
        if flow_id:
            q = q.where(outbox.c.flow_id == flow_id)
        if status:
            q = q.where(outbox.c.status == status)
        rows = self.conn.execute(q.order_by(outbox.c.created_at.desc()).limit(limit)).mappings()
        return [dict(r) for r in rows]

    def update_message(self, message_id: str, **values: Any) -> None:
        self.conn.execute(update(outbox).where(outbox.c.id == message_id).values(**values))

    # -- suppressions --------------------------------------------------------------------------
    def suppress(self, channel: str, address: str, reason: str, now: datetime, message_id: str | None = None) -> None:
        stmt = self.upsert(suppressions).values(channel=channel, address=address.lower(), reason=reason,
                                                message_id=message_id, created_at=now)
        self.conn.execute(stmt.on_conflict_do_nothing())

    def suppression(self, channel: str, address: str) -> str | None:
        row = self.conn.execute(_SUPPRESSION, {"s_channel": channel, "s_address": address.lower()}).first()
        return None if row is None else str(row.reason)

    def suppressions_of(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``suppression`` for many (channel, address) pairs at once, one query per 500 addresses:
        (channel, lowercased address) -> reason, for the suppressed ones only."""
        wanted = {(channel, address.lower()) for channel, address in keys}
        addresses = sorted({address for _, address in wanted})
        channels = sorted({channel for channel, _ in wanted})
        out: dict[tuple[str, str], str] = {}
        for i in range(0, len(addresses), CHUNK):
            rows = self.conn.execute(select(suppressions.c.channel, suppressions.c.address, suppressions.c.reason)
                                     .where(suppressions.c.address.in_(addresses[i:i + CHUNK]),
                                            suppressions.c.channel.in_(channels)))
            out.update(((str(c), str(a)), str(reason)) for c, a, reason in rows if (c, a) in wanted)
        return out

    # -- meta ----------------------------------------------------------------------------------
    def meta_value(self, key: str, default_factory: Any = None) -> str | None:
        """The stored value; with ``default_factory``, create it once (race-safe) and return it."""
        row = self.conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        if row is not None or default_factory is None:
            return None if row is None else str(row.value)
        self.conn.execute(self.upsert(meta).values(key=key, value=str(default_factory())).on_conflict_do_nothing())
        value = self.conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one()
        return str(value)


# Built once: checked for every message a step plans.
_SUPPRESSION = select(suppressions.c.reason).where(suppressions.c.channel == bindparam("s_channel"),
                                                   suppressions.c.address == bindparam("s_address"))


def new_secret() -> str:
    return secrets.token_urlsafe(32)
