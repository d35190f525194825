"""Segments as managed documents: their rows, immutable versions, the segments revision, member
pages (now and at a past instant), deletion, and what refers to them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, String, and_, cast, func, or_, select, update

from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import (
    campaigns,
    flow_versions,
    flows,
    meta,
    profiles,
    segment_due,
    segment_members,
    segment_membership_log,
    segment_versions,
    segments,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from storeflow.flows.conditions import Condition
    from storeflow.flows.segment_stats import SegmentStats

SEGMENTS_REVISION_KEY = "segments_revision"
"""The ``meta`` key of the counter bumped in every transaction that changes a segment."""
CAMPAIGN_USING_STATUSES = ("scheduled", "sending")
"""Campaign statuses whose audience is still to be read (a segment they use cannot be deleted)."""


class SegmentsOps(TxBase):
    def get_segment(self, segment_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(segments).where(segments.c.id == segment_id)).mappings().first())

    def list_segments(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        query = select(segments).order_by(segments.c.id)
        if not include_deleted:
            query = query.where(segments.c.status != "deleted")
        return [dict(r) for r in self.conn.execute(query).mappings()]

    def insert_segment(self, row: dict[str, Any]) -> None:
        self.conn.execute(segments.insert().values(**row))
        self.bump_segments_revision()

    def update_segment(self, segment_id: str, **values: Any) -> None:
        self.conn.execute(update(segments).where(segments.c.id == segment_id).values(**values))
        self.bump_segments_revision()

    def insert_segment_version(self, segment_id: str, version: int, digest: str, definition: dict[str, Any],
                               now: datetime) -> bool:
        """Store ``version``, unless the segment's latest stored version has this digest (the same
        document): then nothing is written and False is returned."""
        latest = self.conn.execute(
            select(segment_versions.c.digest).where(segment_versions.c.segment_id == segment_id)
            .order_by(segment_versions.c.version.desc()).limit(1)
        ).scalar()
        if latest == digest:
            return False
        self.conn.execute(segment_versions.insert().values(segment_id=segment_id, version=version, digest=digest,
                                                           definition=definition, created_at=now))
        return True

    def get_segment_version(self, segment_id: str, version: int) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(segment_versions)
            .where(segment_versions.c.segment_id == segment_id, segment_versions.c.version == version)
        ).mappings().first())

    def segment_versions_of(self, segment_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(segment_versions.c.version, segment_versions.c.digest, segment_versions.c.created_at)
            .where(segment_versions.c.segment_id == segment_id).order_by(segment_versions.c.version)
        )
        return [dict(r) for r in rows.mappings()]

    def live_segment_definitions(self) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            select(segments.c.id, segment_versions.c.definition)
            .join(segment_versions, and_(segment_versions.c.segment_id == segments.c.id,
                                         segment_versions.c.version == segments.c.current_version))
            .where(segments.c.status != "deleted")
        )
        return {str(r.id): dict(r.definition) for r in rows}

    def delete_segment(self, segment_id: str, now: datetime) -> int:
        """Mark the segment deleted, remove its current members (closing their stays in the log with
        ``exited_by = "deleted"``) and its due rows; how many members it had."""
        self.conn.execute(
            update(segment_membership_log)
            .where(segment_membership_log.c.segment_id == segment_id, segment_membership_log.c.exited_at.is_(None))
            .values(exited_at=now, exited_by="deleted")
        )
        removed = self.conn.execute(segment_members.delete().where(segment_members.c.segment_id == segment_id))
        self.conn.execute(segment_due.delete().where(segment_due.c.segment_id == segment_id))
        self.update_segment(segment_id, status="deleted", member_count=0, computed_version=None,
                            computed_at=None, updated_at=now)
        return int(removed.rowcount or 0)

    # -- the revision ------------------------------------------------------------------------------
    def bump_segments_revision(self) -> None:
        """One more segment change, in this transaction: every process's segment cache reloads once
        it commits. (On PostgreSQL the row lock also orders concurrent segment changes.)"""
        stmt = self.upsert(meta).values(key=SEGMENTS_REVISION_KEY, value="1")
        bumped = cast(cast(meta.c.value, BigInteger) + 1, String)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": bumped}))

    def segments_revision(self) -> int:
        """The counter of segment changes: it moves on with every committed change to ``segments``."""
        value = self.conn.execute(select(meta.c.value).where(meta.c.key == SEGMENTS_REVISION_KEY)).scalar()
        return int(value or 0)

    # -- members -----------------------------------------------------------------------------------
    def segment_members_page(self, segment_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Current members with a profile id after ``after`` (None: from the first), by profile id:
        profile_id, email, phone, entered_at. Merged profiles are left out."""
        query = (
            select(segment_members.c.profile_id, profiles.c.email, profiles.c.phone, segment_members.c.entered_at)
            .join(profiles, profiles.c.id == segment_members.c.profile_id)
            .where(segment_members.c.segment_id == segment_id, profiles.c.merged_into.is_(None))
            .order_by(segment_members.c.profile_id).limit(limit)
        )
        if after is not None:
            query = query.where(segment_members.c.profile_id > after)
        return [dict(r) for r in self.conn.execute(query).mappings()]

    def segment_members_at(self, segment_id: str, at: datetime, after: str | None,
                           limit: int) -> list[dict[str, Any]]:
        """The members at instant ``at`` from the membership log (stays with ``entered_at <= at``
        and no exit or an exit after ``at``), paged like :meth:`segment_members_page`."""
        log = segment_membership_log
        stays = (
            select(log.c.profile_id, func.max(log.c.entered_at).label("entered_at"))
            .where(log.c.segment_id == segment_id, log.c.entered_at <= at,
                   or_(log.c.exited_at.is_(None), log.c.exited_at > at))
            .group_by(log.c.profile_id)
        )
        if after is not None:
            stays = stays.where(log.c.profile_id > after)
        inner = stays.order_by(log.c.profile_id).limit(limit).subquery()
        query = (
            select(inner.c.profile_id, profiles.c.email, profiles.c.phone, inner.c.entered_at)
            .select_from(inner.outerjoin(profiles, profiles.c.id == inner.c.profile_id))
            .order_by(inner.c.profile_id)
        )
        return [dict(r) for r in self.conn.execute(query).mappings()]

    # -- preview -----------------------------------------------------------------------------------
    def preview_segment(self, condition: Condition, *, now: datetime, store_tz: ZoneInfo,
                        stats: SegmentStats | None, sample: int) -> dict[str, Any]:
        """How many profiles the condition holds for now, by the SQL evaluator, and the first
        ``sample`` of them by id (profile_id, email): ``{"count": n, "sample": [...]}``. Reads only."""
        from storeflow.segments.sql import members_query

        matching = members_query(condition, now=now, store_tz=store_tz, stats=stats,
                                 dialect_name=self.conn.dialect.name).subquery()
        profile_id = matching.c[0]
        count = self.conn.execute(select(func.count()).select_from(matching)).scalar_one()
        rows = self.conn.execute(
            select(profile_id.label("profile_id"), profiles.c.email)
            .select_from(matching.join(profiles, profiles.c.id == profile_id))
            .order_by(profile_id).limit(sample)
        ).mappings()
        return {"count": int(count), "sample": [dict(r) for r in rows]}

    # -- what refers to segments -------------------------------------------------------------------
    def segment_users(self) -> list[dict[str, Any]]:
        """What may refer to a segment: the live flows (their current definitions) and the campaigns
        still to send (scheduled or sending), as kind ("flow" or "campaign"), id, name, definition."""
        flow_rows = self.conn.execute(
            select(flows.c.id, flows.c.name, flow_versions.c.definition)
            .join(flow_versions, and_(flow_versions.c.flow_id == flows.c.id,
                                      flow_versions.c.version == flows.c.current_version))
            .where(flows.c.status == "live").order_by(flows.c.id)
        )
        found = [{"kind": "flow", "id": r.id, "name": r.name, "definition": r.definition} for r in flow_rows]
        campaign_rows = self.conn.execute(
            select(campaigns.c.id, campaigns.c.name, campaigns.c.definition)
            .where(campaigns.c.status.in_(CAMPAIGN_USING_STATUSES)).order_by(campaigns.c.id)
        )
        found += [{"kind": "campaign", "id": r.id, "name": r.name, "definition": r.definition}
                  for r in campaign_rows]
        return found
