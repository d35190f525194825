"""Date-triggered flows (birthdays and the like): each profile's next fire time per flow, the queue
of profiles whose dates may have changed, and the backfill of a newly live flow's fire times.

The scheduler claims due fire rows through the ``next_fire_at`` index, as the worker claims due runs,
so a date flow costs nothing per profile until a profile is due. Every write that changes a
profile's properties, time zone or merge state calls ``note_profile_changes`` in its own
transaction; the scheduler recomputes those profiles' fire times. While no date flow has a schedule,
nothing is queued (a newly live date flow's backfill computes every profile's fire times anyway):
a store without date flows pays one small query per transaction, not a queued row per profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, select, text, update

from storeflow.store.sql.common import TxBase
from storeflow.store.tables import date_trigger_changes, date_trigger_fires, flows, schedules

# A date flow's schedule row waits here once its backfill is done: its fire times are in
# date_trigger_fires from then on.
BACKFILLED = datetime(9000, 1, 1, tzinfo=UTC)
_DATE_FIELDS = frozenset({"properties", "timezone", "merged_into"})
_CHUNK = 500


def changes_dates(values: Iterable[str]) -> bool:
    """Whether a profile update setting these columns may move the profile's date-trigger times."""
    return not _DATE_FIELDS.isdisjoint(values)


DATE_FLOWS_LOCK = 0x5F_DA7E_F10
"""PostgreSQL advisory lock: shared by transactions that asked whether date flows exist, taken
exclusively by one that makes a date flow live (see :func:`date_flows_exist`)."""


def date_flows_exist(tx: TxBase) -> bool:
    """Whether any date flow has a schedule, asked once per transaction (remembered on ``tx``).

    No date flow can go live between this answer and the transaction's commit: on SQLite writers
    take the database lock up front (BEGIN IMMEDIATE); on PostgreSQL the question takes
    ``DATE_FLOWS_LOCK`` shared, and ``set_date_schedule`` takes it exclusively, so it waits for every
    transaction that was told "none". The backfill that follows the flow going live then reads what
    those transactions wrote, so a profile change they did not queue is never missed."""
    known: bool | None = getattr(tx, "_date_flows_exist", None)
    if known is None:
        if tx.conn.dialect.name == "postgresql":
            tx.conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": DATE_FLOWS_LOCK})
        known = tx.conn.execute(select(schedules.c.flow_id).where(schedules.c.kind == "date").limit(1)).first() \
            is not None
        tx._date_flows_exist = known  # type: ignore[attr-defined]
    return known


def note_profile_changes(tx: TxBase, profile_ids: Iterable[str]) -> None:
    """Queue these profiles for the scheduler to recompute their date-trigger times (only while a
    date flow exists). In id order, and ON CONFLICT DO UPDATE so that on PostgreSQL a row the
    scheduler is taking meanwhile is waited for, then written again (DO NOTHING would see it and let
    the change be lost)."""
    ids = sorted(set(profile_ids))
    if not ids or not date_flows_exist(tx):
        return
    stmt = tx.upsert(date_trigger_changes)
    stmt = stmt.on_conflict_do_update(index_elements=["profile_id"],
                                      set_={"profile_id": stmt.excluded.profile_id})
    tx.conn.execute(stmt, [{"profile_id": pid} for pid in ids])


class DatesOps(TxBase):
    # -- the schedule row of a date flow: its backfill ---------------------------------------------
    def set_date_schedule(self, flow_id: str, version: int, now: datetime) -> bool:
        """Make ``flow_id`` a live date flow at ``version``; its fire times are (re)computed for every
        profile by the backfill unless this version's already are. True when a backfill starts.
        Waits on PostgreSQL for the transactions told that no date flow exists (``date_flows_exist``)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DATE_FLOWS_LOCK})
        self._date_flows_exist = True
        current = self.conn.execute(
            select(schedules.c.kind, schedules.c.flow_version).where(schedules.c.flow_id == flow_id)
        ).first()
        if current is not None and current.kind == "date" and int(current.flow_version) == version:
            return False
        values = {"flow_version": version, "kind": "date", "next_fire_at": now, "backfill_after": ""}
        stmt = self.upsert(schedules).values(flow_id=flow_id, **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["flow_id"], set_=values))
        return True

    def advance_backfill(self, flow_id: str, after: str | None, now: datetime) -> None:
        """The backfill has reached profile id ``after``; None: it is done."""
        self.conn.execute(update(schedules).where(schedules.c.flow_id == flow_id).values(
            backfill_after=after, next_fire_at=now if after is not None else BACKFILLED))

    def live_date_flows(self) -> list[tuple[str, int]]:
        """(flow id, current version) of every live date-triggered flow."""
        rows = self.conn.execute(
            select(flows.c.id, flows.c.current_version)
            .where(flows.c.status == "live", flows.c.trigger_kind == "date").order_by(flows.c.id))
        return [(str(r.id), int(r.current_version)) for r in rows]

    # -- profiles whose dates may have changed ---------------------------------------------------------
    def claim_profile_changes(self, limit: int) -> list[str]:
        """Up to ``limit`` queued profile ids, taken off the queue in this transaction (rows another
        scheduler holds are skipped on PostgreSQL)."""
        q = select(date_trigger_changes.c.profile_id).order_by(date_trigger_changes.c.profile_id).limit(limit)
        ids = [str(r[0]) for r in self.conn.execute(self.store.lock_for_claim(q))]
        for i in range(0, len(ids), _CHUNK):
            self.conn.execute(date_trigger_changes.delete()
                              .where(date_trigger_changes.c.profile_id.in_(ids[i:i + _CHUNK])))
        return ids

    def has_profile_changes(self) -> bool:
        return bool(self.conn.execute(select(exists().select_from(date_trigger_changes))).scalar())

    # -- fire times ------------------------------------------------------------------------------------
    def set_date_fires(self, rows: list[dict[str, Any]]) -> None:
        """Rows of flow_id, profile_id, next_fire_at, occurrence_key: inserted or replaced."""
        if not rows:
            return
        stmt = self.upsert(date_trigger_fires)
        stmt = stmt.on_conflict_do_update(
            index_elements=["flow_id", "profile_id"],
            set_={"next_fire_at": stmt.excluded.next_fire_at, "occurrence_key": stmt.excluded.occurrence_key})
        ordered = sorted(rows, key=lambda r: (r["flow_id"], r["profile_id"]))
        self.conn.execute(stmt, [{k: r[k] for k in ("flow_id", "profile_id", "next_fire_at", "occurrence_key")}
                                 for r in ordered])

    def delete_date_fires(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remove the fire rows of these (flow id, profile id) pairs."""
        wanted = sorted(set(pairs))
        if wanted:
            self.conn.execute(
                date_trigger_fires.delete().where(date_trigger_fires.c.flow_id == bindparam("f"),
                                                  date_trigger_fires.c.profile_id == bindparam("p")),
                [{"f": f, "p": p} for f, p in wanted])

    def date_fires_of(self, profile_id: str) -> list[dict[str, Any]]:
        """The fire rows of one profile, by flow id."""
        rows = self.conn.execute(select(date_trigger_fires).where(date_trigger_fires.c.profile_id == profile_id)
                                 .order_by(date_trigger_fires.c.flow_id))
        return [dict(r) for r in rows.mappings()]

    def last_occurrences(self, profile_ids: Iterable[str]) -> dict[tuple[str, str], str]:
        """(flow id, profile id) -> the occurrence last handled (fired or skipped), for these profiles."""
        wanted = sorted(set(profile_ids))
        out: dict[tuple[str, str], str] = {}
        for i in range(0, len(wanted), _CHUNK):
            rows = self.conn.execute(
                select(date_trigger_fires.c.flow_id, date_trigger_fires.c.profile_id,
                       date_trigger_fires.c.last_occurrence)
                .where(date_trigger_fires.c.profile_id.in_(wanted[i:i + _CHUNK]),
                       date_trigger_fires.c.last_occurrence.is_not(None)))
            out.update({(str(r.flow_id), str(r.profile_id)): str(r.last_occurrence) for r in rows})
        return out

    def claim_due_date_fires(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Due fire rows of live date flows, earliest first, locked for this transaction (SKIP
        LOCKED on PostgreSQL, so concurrent schedulers take different rows)."""
        q = (select(date_trigger_fires)
             .join(flows, flows.c.id == date_trigger_fires.c.flow_id)
             .where(date_trigger_fires.c.next_fire_at <= now, flows.c.status == "live",
                    flows.c.trigger_kind == "date")
             .order_by(date_trigger_fires.c.next_fire_at).limit(limit))
        return [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]

    def update_date_fires(self, rows: list[dict[str, Any]]) -> None:
        """Rows of flow_id, profile_id and next_fire_at, occurrence_key, last_occurrence,
        last_outcome, last_at: one executemany."""
        if not rows:
            return
        stmt = (update(date_trigger_fires)
                .where(date_trigger_fires.c.flow_id == bindparam("k_flow"),
                       date_trigger_fires.c.profile_id == bindparam("k_profile")))
        params = [{"k_flow": r["flow_id"], "k_profile": r["profile_id"],
                   **{k: v for k, v in r.items() if k not in ("flow_id", "profile_id")}} for r in rows]
        self.conn.execute(stmt, params)

    def next_date_fire_at(self) -> datetime | None:
        """The earliest fire time of a live date flow: the first rows in next_fire_at order (an
        index seek), else a MIN over the live date flows."""
        live = {flow_id for flow_id, _ in self.live_date_flows()}
        if not live:
            return None
        head = self.conn.execute(
            select(date_trigger_fires.c.next_fire_at, date_trigger_fires.c.flow_id)
            .order_by(date_trigger_fires.c.next_fire_at).limit(64)).all()
        for when, flow_id in head:
            if flow_id in live:
                return when  # type: ignore[no-any-return]
        if len(head) < 64:
            return None
        value: datetime | None = self.conn.execute(
            select(func.min(date_trigger_fires.c.next_fire_at)).where(date_trigger_fires.c.flow_id.in_(sorted(live)))
        ).scalar_one()
        return value
