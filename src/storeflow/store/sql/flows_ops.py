"""Flows, their immutable versions, and schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import flow_revision, flow_versions, flows, schedules


class FlowsOps(TxBase):
    def get_flow(self, flow_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(flows).where(flows.c.id == flow_id)).mappings().first())

    def list_flows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(select(flows).order_by(flows.c.id)).mappings()]

    def get_flow_version(self, flow_id: str, version: int) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(flow_versions).where(flow_versions.c.flow_id == flow_id, flow_versions.c.version == version)
        ).mappings().first())

    def flow_versions_of(self, flow_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(flow_versions.c.version, flow_versions.c.digest, flow_versions.c.created_at)
            .where(flow_versions.c.flow_id == flow_id).order_by(flow_versions.c.version)
        )
        return [dict(r) for r in rows.mappings()]

    def insert_flow(self, row: dict[str, Any]) -> None:
        self.conn.execute(flows.insert().values(**row))
        self.bump_flow_revision()

    def update_flow(self, flow_id: str, **values: Any) -> None:
        self.conn.execute(update(flows).where(flows.c.id == flow_id).values(**values))
        self.bump_flow_revision()

    def bump_flow_revision(self) -> None:
        """One more flow change, in this transaction: every process's flow cache reloads once it
        commits. (On PostgreSQL the row lock also orders concurrent flow changes.)"""
        stmt = self.upsert(flow_revision).values(id=1, revision=1)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["id"],
                                                     set_={"revision": flow_revision.c.revision + 1}))

    def insert_flow_version(self, flow_id: str, version: int, digest: str, definition: dict[str, Any],
                            now: datetime) -> None:
        self.conn.execute(flow_versions.insert().values(flow_id=flow_id, version=version, digest=digest,
                                                        definition=definition, created_at=now))

    def set_flow_layout(self, flow_id: str, version: int, layout: dict[str, Any] | None) -> None:
        """Replace the editor layout kept in a stored version's document (not part of its digest:
        the engine never reads it, so the version stays what it was)."""
        row = self.conn.execute(
            select(flow_versions.c.definition)
            .where(flow_versions.c.flow_id == flow_id, flow_versions.c.version == version)
        ).first()
        if row is None:
            return
        definition = {k: v for k, v in dict(row.definition).items() if k != "layout"}
        if layout is not None:
            definition["layout"] = layout
        self.conn.execute(update(flow_versions)
                          .where(flow_versions.c.flow_id == flow_id, flow_versions.c.version == version)
                          .values(definition=definition))

    def live_flows(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(flows.c.id, flows.c.current_version, flows.c.trigger_kind, flows.c.trigger_event)
            .where(flows.c.status == "live")
        )
        return [dict(r) for r in rows.mappings()]

    def flows_revision(self) -> int:
        """The counter of flow changes (``flow_revision``): it moves on with every committed change
        to ``flows``, whatever the clocks of the hosts that made them say."""
        value = self.conn.execute(select(flow_revision.c.revision).where(flow_revision.c.id == 1)).scalar()
        return int(value or 0)

    # -- schedules -----------------------------------------------------------------------------
    def set_schedule(self, flow_id: str, version: int, kind: str, next_fire_at: datetime) -> None:
        stmt = self.upsert(schedules).values(flow_id=flow_id, flow_version=version, kind=kind,
                                             next_fire_at=next_fire_at)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["flow_id"],
            set_={"flow_version": version, "kind": kind, "next_fire_at": next_fire_at},
        ))

    def drop_schedule(self, flow_id: str) -> None:
        self.conn.execute(schedules.delete().where(schedules.c.flow_id == flow_id))

    def claim_due_schedules(self, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
        q = select(schedules).where(schedules.c.next_fire_at <= now).order_by(schedules.c.next_fire_at).limit(limit)
        return [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]

    def fire_schedule(self, flow_id: str, fired_at: datetime, next_fire_at: datetime) -> None:
        self.conn.execute(update(schedules).where(schedules.c.flow_id == flow_id)
                          .values(last_fired_at=fired_at, next_fire_at=next_fire_at))

    def next_schedule_at(self) -> datetime | None:
        value: datetime | None = self.conn.execute(select(func.min(schedules.c.next_fire_at))).scalar_one()
        return value
