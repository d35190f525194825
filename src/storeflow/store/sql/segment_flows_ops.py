"""Segment-triggered flows: the backfill that starts a run for each current member of the segment
when a flow with ``include_existing: true`` goes live (the schedules row of kind "segment", paged
by profile id like a date flow's backfill, through ``segment_members_page``), started again when the
segment is computed in full again (``last_fired_at`` holds the computation a backfill covers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from storeflow.store.sql.common import TxBase
from storeflow.store.tables import schedules


class SegmentFlowsOps(TxBase):
    def set_segment_backfill(self, flow_id: str, version: int, now: datetime, *, restart: bool) -> bool:
        """Give live flow ``flow_id`` (at ``version``) its backfill of the segment's current members:
        a new one, from the first profile id, when it has none or ``restart``; else the row only moves
        to ``version`` (the backfill goes on, or stays done). True when a backfill starts."""
        current = self.conn.execute(select(schedules.c.kind).where(schedules.c.flow_id == flow_id)).first()
        if current is not None and current.kind == "segment" and not restart:
            self.conn.execute(schedules.update().where(schedules.c.flow_id == flow_id).values(flow_version=version))
            return False
        values = {"flow_version": version, "kind": "segment", "next_fire_at": now, "backfill_after": "",
                  "last_fired_at": None}
        stmt = self.upsert(schedules).values(flow_id=flow_id, **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["flow_id"], set_=values))
        return True

    def postpone_segment_backfill(self, flow_id: str, until: datetime) -> None:
        """Look at the flow's backfill again at ``until`` (its segment is still being computed)."""
        self.conn.execute(schedules.update().where(schedules.c.flow_id == flow_id, schedules.c.kind == "segment")
                          .values(next_fire_at=until))

    def segment_backfills(self) -> list[dict[str, Any]]:
        """The schedules rows of members backfills (kind "segment"): flow_id, flow_version,
        next_fire_at (``BACKFILLED`` once done), backfill_after and last_fired_at (the segment's
        ``computed_at`` the backfill covers)."""
        rows = self.conn.execute(
            select(schedules.c.flow_id, schedules.c.flow_version, schedules.c.next_fire_at, schedules.c.backfill_after,
                   schedules.c.last_fired_at).where(schedules.c.kind == "segment").order_by(schedules.c.flow_id))
        return [dict(r) for r in rows.mappings()]
