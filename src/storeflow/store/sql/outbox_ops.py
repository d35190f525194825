"""The outbox: messages produced by steps, delivered after commit, with attempts recorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import delivery_attempts, outbox


class OutboxOps(TxBase):
    def enqueue(self, row: dict[str, Any]) -> bool:
        """Add a message; False if one with the same idempotency key exists (never twice)."""
        stmt = self.upsert(outbox).values(**row).on_conflict_do_nothing(index_elements=["idempotency_key"])
        created = self.conn.execute(stmt.returning(outbox.c.id)).first() is not None
        if created:
            self.notify_after_commit("storeflow_outbox")
        return created

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[dict[str, Any]]:
        """Pending messages due now, and sending ones whose lease ran out (a worker died mid-send)."""
        q = (
            select(outbox)
            .where(or_(
                (outbox.c.status == "pending") & (outbox.c.next_attempt_at <= now),
                (outbox.c.status == "sending") & (outbox.c.lease_until <= now),
            ))
            .order_by(outbox.c.next_attempt_at)
            .limit(limit)
        )
        rows = [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]
        for row in rows:
            row["attempts"] += 1
            row["held_lease"] = now + lease
            self.conn.execute(
                update(outbox).where(outbox.c.id == row["id"])
                .values(status="sending", lease_until=row["held_lease"], attempts=row["attempts"], updated_at=now)
            )
        return rows

    def renew_lease(self, message_id: str, held: datetime, until: datetime) -> bool:
        """Extend a lease only if it is still the one this worker holds (compare-and-set on the
        lease time). False: another worker took the message over, so this one must not send it."""
        res = self.conn.execute(
            update(outbox).where(outbox.c.id == message_id, outbox.c.status == "sending",
                                 outbox.c.lease_until == held).values(lease_until=until)
        )
        return bool(res.rowcount)

    def record_attempt(self, row: dict[str, Any]) -> None:
        self.conn.execute(delivery_attempts.insert().values(**row))

    def finish_message(self, message_id: str, now: datetime, *, status: str, error: str | None = None,
                       next_attempt_at: datetime | None = None, provider_id: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error, "lease_until": None, "updated_at": now,
                                  "next_attempt_at": next_attempt_at}
        if provider_id is not None:
            values["provider_id"] = provider_id
        if status == "sent":
            values["sent_at"] = now
        self.conn.execute(update(outbox).where(outbox.c.id == message_id).values(**values))

    def get_message(self, message_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(outbox).where(outbox.c.id == message_id)).mappings().first())

    def messages_of_run(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(outbox).where(outbox.c.run_id == run_id).order_by(outbox.c.created_at))
        return [dict(r) for r in rows.mappings()]

    def attempts_of(self, message_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(delivery_attempts).where(delivery_attempts.c.outbox_id == message_id)
                                 .order_by(delivery_attempts.c.attempt))
        return [dict(r) for r in rows.mappings()]

    def next_outbox_at(self) -> datetime | None:
        value: datetime | None = self.conn.execute(
            select(func.min(func.coalesce(outbox.c.lease_until, outbox.c.next_attempt_at)))
            .where(outbox.c.status.in_(("pending", "sending")))
        ).scalar_one()
        return value

    def outbox_counts(self) -> dict[str, int]:
        rows = self.conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        return {s: int(n) for s, n in rows}
