"""API keys: only a SHA-256 of each secret is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import api_keys


class KeysOps(TxBase):
    def insert_key(self, row: dict[str, Any]) -> None:
        self.conn.execute(api_keys.insert().values(**row))

    def key_by_hash(self, secret_hash: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(api_keys).where(api_keys.c.secret_hash == secret_hash, api_keys.c.revoked_at.is_(None))
        ).mappings().first())

    def list_keys(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(api_keys).order_by(api_keys.c.created_at))
        return [dict(r) for r in rows.mappings()]

    def revoke_key(self, key_id: str, now: datetime) -> bool:
        res = self.conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                                .values(revoked_at=now))
        return bool(res.rowcount)
