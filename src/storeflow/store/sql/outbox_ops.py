"""The outbox: messages produced by steps, delivered after commit, with attempts recorded."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from storeflow.store.sql.bulk_ops import CHUNK
from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import delivery_attempts, outbox


class OutboxOps(TxBase):
    def enqueue(self, row: dict[str, Any]) -> bool:
        """Add a message; False if one with the same idempotency key exists (never twice)."""
        stmt = _enqueue_statement(self.conn.dialect.name, tuple(row), returning=True)
        created = self.conn.execute(stmt, row).first() is not None
        if created:
            self.notify_after_commit("storeflow_outbox")
        return created

    def enqueue_many(self, rows: list[dict[str, Any]]) -> None:
        """:meth:`enqueue` for many messages: one statement per set of columns; a message whose
        idempotency key exists (also earlier in ``rows``) is skipped."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_columns.setdefault(tuple(row), []).append(row)
        for columns, group in by_columns.items():
            self.conn.execute(_enqueue_statement(self.conn.dialect.name, columns, returning=False), group)
        if rows:
            self.notify_after_commit("storeflow_outbox")

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[dict[str, Any]]:
        """Pending messages due now, and sending ones whose lease ran out (a worker died mid-send).
        Each comes back with ``attempts`` counted and ``held_lease``, the lease this worker holds."""
        # Two queries, each seeking its own index on (status, time): one OR over both walked every
        # message ever sent, on every claim.
        expired = (select(outbox).where(outbox.c.status == "sending", outbox.c.lease_until <= now)
                   .order_by(outbox.c.lease_until).limit(limit))
        rows = [dict(r) for r in self.conn.execute(self.store.lock_for_claim(expired)).mappings()]
        if len(rows) < limit:
            due = (select(outbox).where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                   .order_by(outbox.c.next_attempt_at).limit(limit - len(rows)))
            rows += [dict(r) for r in self.conn.execute(self.store.lock_for_claim(due)).mappings()]
        if not rows:
            return rows
        held = now + lease
        for row in rows:
            row["attempts"] += 1
            row["held_lease"] = held
        self.conn.execute(
            update(outbox).where(outbox.c.id.in_([row["id"] for row in rows]))
            .values(status="sending", lease_until=held, attempts=outbox.c.attempts + 1, updated_at=now)
        )
        return rows

    def renew_lease(self, message_id: str, held: datetime, until: datetime) -> bool:
        """Extend a lease only if it is still the one this worker holds (compare-and-set on the
        lease time). False: another worker took the message over, so this one must not send it."""
        return message_id in self.renew_leases([(message_id, held)], until)

    def renew_leases(self, held: list[tuple[str, datetime]], until: datetime) -> set[str]:
        """:meth:`renew_lease` for many messages, given as (id, lease held): the ids whose lease
        this worker still held and now holds until ``until``. One statement per distinct held lease."""
        by_lease: dict[datetime, list[str]] = {}
        for message_id, lease in held:
            by_lease.setdefault(lease, []).append(message_id)
        renewed: set[str] = set()
        for lease, ids in by_lease.items():
            res = self.conn.execute(
                update(outbox).where(outbox.c.id.in_(ids), outbox.c.status == "sending",
                                     outbox.c.lease_until == lease)
                .values(lease_until=until).returning(outbox.c.id)
            )
            renewed.update(str(r[0]) for r in res)
        return renewed

    def record_attempts(self, rows: list[dict[str, Any]]) -> None:
        """Add delivery attempts (one statement for all; every row has the same keys)."""
        if rows:
            self.conn.execute(delivery_attempts.insert(), rows)

    def finish_messages(self, done: list[dict[str, Any]]) -> None:
        """Record the outcome of many sends in one statement; each item from :func:`finished`.
        The lease is released; ``provider_id`` and ``sent_at`` are only replaced when given."""
        if done:
            self.conn.execute(_FINISH, done)

    def finish_held_message(self, done: dict[str, Any], held: datetime, *, event_pending: bool = False) -> bool:
        """Record one send's outcome (an item from :func:`finished`) only if this worker still holds
        the message's lease ``held`` (compare-and-set): one small UPDATE, right after the send.
        ``event_pending``: its ``message_sent`` event is still to be stored (see
        :meth:`messages_with_pending_events`). False: another worker took the message over
        meanwhile, and its outcome is that worker's."""
        params = {**done, "m_held": held, "m_event": True if event_pending else None}
        return bool(self.conn.execute(_FINISH_HELD, params).rowcount)

    def messages_with_pending_events(self, limit: int) -> list[dict[str, Any]]:
        """Sent messages whose ``message_sent`` event is not stored yet (``event_pending``), locked
        for this transaction (SKIP LOCKED on PostgreSQL), to be stored and cleared with it."""
        q = select(outbox).where(outbox.c.event_pending == true()).order_by(outbox.c.id).limit(limit)
        return [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]

    def clear_pending_events(self, message_ids: list[str]) -> None:
        """Their ``message_sent`` events are stored (in this transaction)."""
        if message_ids:
            self.conn.execute(update(outbox).where(outbox.c.id.in_(message_ids)).values(event_pending=None))

    def get_message(self, message_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(outbox).where(outbox.c.id == message_id)).mappings().first())

    def messages_of_run(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(outbox).where(outbox.c.run_id == run_id).order_by(outbox.c.created_at))
        return [dict(r) for r in rows.mappings()]

    def attempts_of(self, message_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(delivery_attempts).where(delivery_attempts.c.outbox_id == message_id)
                                 .order_by(delivery_attempts.c.attempt))
        return [dict(r) for r in rows.mappings()]

    def attempts_of_messages(self, message_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """``attempts_of`` for many messages at once (one query per 500): message id -> its
        attempts in order; messages without any are absent."""
        wanted = sorted(set(message_ids))
        out: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(wanted), CHUNK):
            rows = self.conn.execute(select(delivery_attempts)
                                     .where(delivery_attempts.c.outbox_id.in_(wanted[i:i + CHUNK]))
                                     .order_by(delivery_attempts.c.outbox_id, delivery_attempts.c.attempt))
            for r in rows.mappings():
                out.setdefault(r["outbox_id"], []).append(dict(r))
        return out

    def next_outbox_at(self) -> datetime | None:
        value: datetime | None = self.conn.execute(
            select(func.min(func.coalesce(outbox.c.lease_until, outbox.c.next_attempt_at)))
            .where(outbox.c.status.in_(("pending", "sending")))
        ).scalar_one()
        return value

    def outbox_counts(self) -> dict[str, int]:
        rows = self.conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        return {s: int(n) for s, n in rows}


@lru_cache(maxsize=64)
def _enqueue_statement(dialect: str, columns: tuple[str, ...], *, returning: bool) -> Any:
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING [RETURNING id] for these columns, built
    once per dialect and set of columns (the values come as parameters)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(outbox).values({name: bindparam(name, type_=outbox.c[name].type) for name in columns})
    stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return stmt.returning(outbox.c.id) if returning else stmt



_FINISH = (
    update(outbox).where(outbox.c.id == bindparam("m_id"))
    .values(status=bindparam("m_status"), last_error=bindparam("m_error"), lease_until=None,
            updated_at=bindparam("m_now"), next_attempt_at=bindparam("m_next"),
            provider_id=func.coalesce(bindparam("m_provider", type_=outbox.c.provider_id.type), outbox.c.provider_id),
            sent_at=func.coalesce(bindparam("m_sent", type_=outbox.c.sent_at.type), outbox.c.sent_at))
)

_FINISH_HELD = _FINISH.where(
    outbox.c.status == "sending", outbox.c.lease_until == bindparam("m_held", type_=outbox.c.lease_until.type)
).values(event_pending=bindparam("m_event", type_=outbox.c.event_pending.type))
