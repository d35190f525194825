"""Events: idempotent insert, history queries, timelines."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from storeflow.store.sql.bulk_ops import CHUNK
from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import events


class EventsOps(TxBase):
    def insert_event(self, record: dict[str, Any]) -> bool:
        """Insert unless an event with the same idempotency key exists; True if inserted."""
        stmt = self.upsert(events).values(**record).on_conflict_do_nothing(index_elements=["idempotency_key"])
        return self.conn.execute(stmt.returning(events.c.id)).first() is not None

    def existing_idempotency_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        rows = self.conn.execute(select(events.c.idempotency_key).where(events.c.idempotency_key.in_(keys)))
        return {r[0] for r in rows}

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(events).where(events.c.id == event_id)).mappings().first())

    def history_events(self, profile_id: str, event_type: str, since: datetime | None,
                       until: datetime) -> list[dict[str, Any]]:
        q = select(events.c.id, events.c.type, events.c.occurred_at, events.c.properties).where(
            events.c.profile_id == profile_id, events.c.type == event_type, events.c.occurred_at <= until
        )
        if since is not None:
            q = q.where(events.c.occurred_at >= since)
        return [dict(r) for r in self.conn.execute(q.order_by(events.c.occurred_at)).mappings()]

    def history_events_of(self, profile_ids: Iterable[str], event_type: str, since: datetime | None,
                          until: datetime) -> dict[str, list[dict[str, Any]]]:
        """``history_events`` for many profiles at once (one query per 500 profiles): profile id ->
        its events in ``occurred_at`` order; profiles without any are absent."""
        wanted = sorted(set(profile_ids))
        out: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(wanted), CHUNK):
            q = select(events.c.profile_id, events.c.id, events.c.type, events.c.occurred_at,
                       events.c.properties).where(
                events.c.profile_id.in_(wanted[i:i + CHUNK]), events.c.type == event_type,
                events.c.occurred_at <= until)
            if since is not None:
                q = q.where(events.c.occurred_at >= since)
            for r in self.conn.execute(q.order_by(events.c.occurred_at)).mappings():
                row = dict(r)
                out.setdefault(row.pop("profile_id"), []).append(row)
        return out

    def timeline(self, profile_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(events).where(events.c.profile_id == profile_id)
            .order_by(events.c.occurred_at.desc(), events.c.received_at.desc()).limit(limit)
        ).mappings()
        return [dict(r) for r in rows]

    def count_events(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(events)).scalar_one())
