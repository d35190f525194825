"""Runs, their step log, event waits and re-entry bookkeeping."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import flow_entries, flows, run_steps, run_waits, runs

ACTIVE_STATUSES = ("active", "waiting")


class RunsOps(TxBase):
    def create_run(self, row: dict[str, Any]) -> bool:
        """Insert a run; False if its active_key or dedupe_key is taken (already in the flow)."""
        stmt = self.upsert(runs).values(**row).on_conflict_do_nothing()
        created = self.conn.execute(stmt.returning(runs.c.id)).first() is not None
        if created:
            self.notify_after_commit("storeflow_runs")
        return created

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first())

    def claim_due_runs(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Due runs of live flows, locked for this transaction (SKIP LOCKED on PostgreSQL)."""
        q = (
            select(runs)
            .join(flows, flows.c.id == runs.c.flow_id)
            .where(runs.c.due_at <= now, flows.c.status == "live")
            .order_by(runs.c.due_at)
            .limit(limit)
        )
        return [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]

    def update_run(self, run_id: str, **values: Any) -> None:
        self.conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def append_steps(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(run_steps.insert(), rows)

    def run_steps_of(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(run_steps).where(run_steps.c.run_id == run_id).order_by(run_steps.c.seq))
        return [dict(r) for r in rows.mappings()]

    def active_run_for(self, flow_id: str, profile_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(runs).where(runs.c.active_key == f"{flow_id}:{profile_id}")
        ).mappings().first())

    def list_runs(self, *, flow_id: str | None = None, status: str | None = None, profile_id: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        q = select(runs)
        if flow_id:
            q = q.where(runs.c.flow_id == flow_id)
        if status:
            q = q.where(runs.c.status == status)
        if profile_id:
            q = q.where(runs.c.profile_id == profile_id)
        rows = self.conn.execute(q.order_by(runs.c.started_at.desc(), runs.c.id).limit(limit).offset(offset))
        return [dict(r) for r in rows.mappings()]

    def run_counts(self, flow_id: str | None = None) -> dict[str, int]:
        q = select(runs.c.status, func.count()).group_by(runs.c.status)
        if flow_id:
            q = q.where(runs.c.flow_id == flow_id)
        return {status: int(n) for status, n in self.conn.execute(q).all()}

    def next_due_at(self) -> datetime | None:
        value: datetime | None = self.conn.execute(
            select(func.min(runs.c.due_at)).join(flows, flows.c.id == runs.c.flow_id).where(flows.c.status == "live")
        ).scalar_one()
        return value

    # -- waits for events ----------------------------------------------------------------------
    def add_wait(self, run_id: str, profile_id: str, event_type: str, since: datetime) -> None:
        stmt = self.upsert(run_waits).values(run_id=run_id, profile_id=profile_id, event_type=event_type, since=since)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["run_id"], set_={"profile_id": profile_id, "event_type": event_type, "since": since}
        ))

    def waits_for(self, profile_id: str, event_type: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(run_waits).where(run_waits.c.profile_id == profile_id, run_waits.c.event_type == event_type)
        )
        return [dict(r) for r in rows.mappings()]

    def remove_wait(self, run_id: str) -> bool:
        return bool(self.conn.execute(run_waits.delete().where(run_waits.c.run_id == run_id)).rowcount)

    # -- re-entry ------------------------------------------------------------------------------
    def flow_entry(self, flow_id: str, profile_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(flow_entries).where(flow_entries.c.flow_id == flow_id, flow_entries.c.profile_id == profile_id)
        ).mappings().first())

    def record_entry(self, flow_id: str, profile_id: str, at: datetime) -> None:
        stmt = self.upsert(flow_entries).values(flow_id=flow_id, profile_id=profile_id, entries=1, last_entered_at=at)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["flow_id", "profile_id"],
            set_={"entries": flow_entries.c.entries + 1, "last_entered_at": at},
        ))

    def lock_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row, locked until commit (FOR UPDATE on PostgreSQL) so a worker cannot race."""
        q = select(runs).where(runs.c.id == run_id)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return as_dict(self.conn.execute(q).mappings().first())
