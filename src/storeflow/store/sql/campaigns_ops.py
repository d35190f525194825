"""Campaigns: their rows, the frozen audience (one INSERT ... SELECT from the segments' current
members), the claim of due recipients, Smart Sending's look at recent marketing messages,
cancellation and the report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from storeflow.store.sql.bulk_ops import CHUNK
from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.tables import (
    UTCDateTime,
    campaign_recipients,
    campaigns,
    events,
    outbox,
    profiles,
    segment_members,
    segments,
)

_RECIPIENTS = campaign_recipients
_NOT_RECEIVED = ("skipped", "suppressed", "failed", "cancelled")
"""Outbox statuses of messages that did not reach the recipient (Smart Sending ignores them)."""


def _audience(include: Sequence[str], exclude: Sequence[str]) -> Any:
    """The audience as a subquery of ``profile_id``: members of any included segment, distinct,
    minus members of any excluded segment, skipping merged profiles."""
    members = (select(segment_members.c.profile_id)
               .where(segment_members.c.segment_id.in_(list(include))).distinct().subquery("inc"))
    q = (select(members.c.profile_id, profiles.c.timezone)
         .select_from(members.join(profiles, profiles.c.id == members.c.profile_id))
         .where(profiles.c.merged_into.is_(None)))
    if exclude:
        ex = segment_members.alias("ex")
        q = q.where(~exists().where(ex.c.segment_id.in_(list(exclude)), ex.c.profile_id == members.c.profile_id))
    return q.subquery("aud")


class CampaignsOps(TxBase):
    # -- campaign rows ---------------------------------------------------------------------------------
    def insert_campaign(self, row: dict[str, Any]) -> None:
        """Insert a campaign row (a duplicate id is a unique violation)."""
        self.conn.execute(campaigns.insert().values(**row))

    def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign row by id; None if unknown."""
        return as_dict(self.conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).mappings().first())

    def list_campaigns(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Campaigns, newest first, optionally of one status."""
        q = select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id).limit(limit)
        if status is not None:
            q = q.where(campaigns.c.status == status)
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def update_campaign(self, campaign_id: str, expect: Sequence[str] | None = None, **values: Any) -> bool:
        """Set these columns of the campaign, only while its status is one of ``expect`` when given
        (compare-and-set); False if it is unknown or in another status."""
        q = update(campaigns).where(campaigns.c.id == campaign_id).values(**values)
        if expect is not None:
            q = q.where(campaigns.c.status.in_(list(expect)))
        return bool(self.conn.execute(q).rowcount)

    def claim_due_campaigns(self, now: datetime, limit: int = 10) -> list[dict[str, Any]]:
        """Scheduled campaigns whose send time has come, locked for this transaction (SKIP LOCKED
        on PostgreSQL)."""
        q = (select(campaigns).where(campaigns.c.status == "scheduled", campaigns.c.send_at <= now)
             .order_by(campaigns.c.send_at).limit(limit))
        return [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]

    def lock_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign row while it is ``sending``, locked for this transaction; None if it is in
        another status or another transaction holds it (SKIP LOCKED on PostgreSQL)."""
        q = select(campaigns).where(campaigns.c.id == campaign_id, campaigns.c.status == "sending")
        return as_dict(self.conn.execute(self.store.lock_for_claim(q)).mappings().first())

    # -- the audience ----------------------------------------------------------------------------------
    def audience_segments_known(self, segment_ids: Iterable[str]) -> set[str]:
        """Which of these segment ids name live segments."""
        wanted = sorted(set(segment_ids))
        if not wanted:
            return set()
        q = select(segments.c.id).where(segments.c.id.in_(wanted), segments.c.status == "live")
        return {str(r[0]) for r in self.conn.execute(q)}

    def count_audience(self, include: Sequence[str], exclude: Sequence[str]) -> int:
        """How many live profiles are in any included segment and in no excluded one (reads only)."""
        aud = _audience(include, exclude)
        return int(self.conn.execute(select(func.count()).select_from(aud)).scalar_one())

    def audience_sample(self, include: Sequence[str], exclude: Sequence[str], limit: int = 1) -> list[str]:
        """The first ``limit`` profile ids of the audience, by id (reads only)."""
        aud = _audience(include, exclude)
        q = select(aud.c.profile_id).order_by(aud.c.profile_id).limit(limit)
        return [str(r[0]) for r in self.conn.execute(q)]

    def audience_timezones(self, include: Sequence[str], exclude: Sequence[str]) -> list[str | None]:
        """The distinct profile time zones of the audience (None: the profile has none)."""
        aud = _audience(include, exclude)
        return [r[0] for r in self.conn.execute(select(aud.c.timezone).distinct())]

    def freeze_audience(self, campaign_id: str, include: Sequence[str], exclude: Sequence[str], now: datetime, *,
                        due_at: datetime, zone_due: dict[str, datetime] | None = None,
                        variants: Sequence[tuple[str, int]] = ()) -> int:
        """Record the audience as the campaign's recipients, all ``pending``, in one INSERT ...
        SELECT: each gets a variant (by weight, round robin over the profile ids) and a due time
        (``zone_due`` by the profile's time zone, else ``due_at``). Returns how many."""
        aud = _audience(include, exclude)
        variant: ColumnElement[Any] = literal(None, String())
        if variants:
            total = sum(weight for _, weight in variants)
            bucket = (func.row_number().over(order_by=aud.c.profile_id) - 1) % total
            whens, upto = [], 0
            for name, weight in variants[:-1]:
                upto += weight
                whens.append((bucket < upto, literal(name, String())))
            variant = case(*whens, else_=literal(variants[-1][0], String())) if whens else \
                literal(variants[-1][0], String())
        due: ColumnElement[Any] = literal(due_at, UTCDateTime())
        if zone_due:
            due = case(*[(aud.c.timezone == zone, literal(at, UTCDateTime())) for zone, at in zone_due.items()],
                       else_=literal(due_at, UTCDateTime()))
        q = select(literal(campaign_id, String()), aud.c.profile_id, variant, due, literal("pending", String()),
                   literal(now, UTCDateTime()))
        stmt = insert(_RECIPIENTS).from_select(
            ["campaign_id", "profile_id", "variant", "due_at", "status", "updated_at"], q)
        self.conn.execute(stmt)
        return int(self.conn.execute(select(func.count()).where(_RECIPIENTS.c.campaign_id == campaign_id))
                   .scalar_one())

    # -- sending ---------------------------------------------------------------------------------------
    def claim_campaign_recipients(self, campaign_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Pending recipients due by ``now``, earliest first, locked for this transaction (SKIP
        LOCKED on PostgreSQL), each with its ``profile`` row as it is now (None if gone)."""
        if limit <= 0:
            return []
        q = (select(_RECIPIENTS).where(_RECIPIENTS.c.campaign_id == campaign_id, _RECIPIENTS.c.status == "pending",
                                       _RECIPIENTS.c.due_at <= now)
             .order_by(_RECIPIENTS.c.due_at).limit(limit))  # (status, due_at) index: no sort of the rest
        rows = [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]
        # By primary key, apart: a join let PostgreSQL pick a hash join over every profile when its
        # statistics lagged behind a freshly frozen audience.
        found: dict[str, dict[str, Any]] = {}
        ids = [r["profile_id"] for r in rows]
        for i in range(0, len(ids), CHUNK):
            found.update((r["id"], dict(r)) for r in self.conn.execute(
                select(profiles).where(profiles.c.id.in_(ids[i:i + CHUNK]))).mappings())
        for row in rows:
            row["profile"] = found.get(row["profile_id"])
        return rows

    def update_campaign_recipients(self, campaign_id: str, rows: list[dict[str, Any]]) -> None:
        """Record what became of recipients: rows of profile_id, status, reason, message_id and
        updated_at (one executemany)."""
        if not rows:
            return
        stmt = (update(_RECIPIENTS).where(_RECIPIENTS.c.campaign_id == bindparam("k_campaign"),
                                          _RECIPIENTS.c.profile_id == bindparam("k_profile"))
                .values(status=bindparam("k_status"), reason=bindparam("k_reason"),
                        message_id=bindparam("k_message"), updated_at=bindparam("k_at")))
        self.conn.execute(stmt, [{"k_campaign": campaign_id, "k_profile": r["profile_id"], "k_status": r["status"],
                                  "k_reason": r.get("reason"), "k_message": r.get("message_id"),
                                  "k_at": r["updated_at"]} for r in rows])

    def campaign_queued_since(self, campaign_id: str, since: datetime) -> tuple[int, datetime | None]:
        """How many recipients were queued after ``since``, and the earliest of those times (the
        throttle's window)."""
        q = select(func.count(), func.min(_RECIPIENTS.c.updated_at)).where(
            _RECIPIENTS.c.campaign_id == campaign_id, _RECIPIENTS.c.status == "queued",
            _RECIPIENTS.c.updated_at > since)
        n, first = self.conn.execute(q).one()
        return int(n), first

    def has_pending_recipients(self, campaign_id: str) -> bool:
        """Whether any recipient of the campaign is still pending."""
        q = select(exists().where(_RECIPIENTS.c.campaign_id == campaign_id, _RECIPIENTS.c.status == "pending"))
        return bool(self.conn.execute(q).scalar())

    def recently_messaged(self, profile_ids: Iterable[str], since: datetime) -> set[str]:
        """Which of these profiles got (or have queued) a marketing message, of any flow or
        campaign, at or after ``since`` (Smart Sending)."""
        wanted = sorted(set(profile_ids))
        found: set[str] = set()
        when = func.coalesce(outbox.c.sent_at, outbox.c.created_at)
        for i in range(0, len(wanted), CHUNK):
            q = (select(outbox.c.profile_id).distinct()
                 .where(outbox.c.profile_id.in_(wanted[i:i + CHUNK]), outbox.c.kind == "marketing",
                        outbox.c.status.not_in(_NOT_RECEIVED), when >= since))
            found.update(str(r[0]) for r in self.conn.execute(q))
        return found

    def next_campaign_send_at(self) -> datetime | None:
        """The earliest send time of a scheduled campaign; None if none."""
        value: datetime | None = self.conn.execute(
            select(func.min(campaigns.c.send_at)).where(campaigns.c.status == "scheduled")).scalar_one()
        return value

    def next_recipient_due(self, skip_campaigns: Iterable[str] = ()) -> datetime | None:
        """The earliest due time of a pending recipient of a campaign not in ``skip_campaigns``."""
        q = select(_RECIPIENTS.c.due_at).where(_RECIPIENTS.c.status == "pending")
        skip = sorted(set(skip_campaigns))
        if skip:
            q = q.where(_RECIPIENTS.c.campaign_id.not_in(skip))
        value: datetime | None = self.conn.execute(q.order_by(_RECIPIENTS.c.due_at).limit(1)).scalar()
        return value

    def cancel_campaign(self, campaign_id: str, now: datetime) -> bool:
        """Cancel a draft, scheduled or sending campaign, or a sent one whose messages are not all
        out yet: its pending recipients are cancelled, and so are its queued messages the
        dispatcher has not claimed (with their recipients). False if the campaign is unknown,
        cancelled, or sent with every message gone."""
        unsent = select(exists().where(outbox.c.campaign_id == campaign_id, outbox.c.status == "pending"))
        allowed = ("draft", "scheduled", "sending", "sent") if self.conn.execute(unsent).scalar() else \
            ("draft", "scheduled", "sending")
        if not self.update_campaign(campaign_id, allowed, status="cancelled", cancelled_at=now, updated_at=now):
            return False
        self.conn.execute(update(_RECIPIENTS).where(_RECIPIENTS.c.campaign_id == campaign_id,
                                                    _RECIPIENTS.c.status == "pending")
                          .values(status="cancelled", reason="cancelled", updated_at=now))
        ids = [str(r[0]) for r in self.conn.execute(
            update(outbox).where(outbox.c.campaign_id == campaign_id, outbox.c.status == "pending")
            .values(status="cancelled", last_error="the campaign was cancelled", next_attempt_at=None,
                    updated_at=now).returning(outbox.c.id))]
        for i in range(0, len(ids), CHUNK):
            self.conn.execute(update(_RECIPIENTS).where(_RECIPIENTS.c.campaign_id == campaign_id,
                                                        _RECIPIENTS.c.message_id.in_(ids[i:i + CHUNK]))
                              .values(status="cancelled", reason="cancelled", updated_at=now))
        return True

    # -- the report ------------------------------------------------------------------------------------
    def campaign_report(self, campaign_id: str) -> dict[str, Any]:
        """Counts per variant (None: no variants): ``recipients`` by status and reason, and
        ``messages`` from the campaign's outbox rows and their events: queued, sent, failed,
        cancelled, delivered, opened, clicked, unsubscribed."""
        recipients: dict[str | None, dict[str, int]] = {}
        q = (select(_RECIPIENTS.c.variant, _RECIPIENTS.c.status, _RECIPIENTS.c.reason, func.count())
             .where(_RECIPIENTS.c.campaign_id == campaign_id)
             .group_by(_RECIPIENTS.c.variant, _RECIPIENTS.c.status, _RECIPIENTS.c.reason))
        for variant, status, reason, n in self.conn.execute(q):
            key = f"{status}:{reason}" if reason else str(status)
            recipients.setdefault(variant, {})[key] = int(n)

        def count(cond: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

        unsub = events.alias("unsub")
        unsub_key = literal("storeflow:", String()) + outbox.c.id + literal(":unsubscribed", String())
        q2 = (select(outbox.c.variant, func.count(), count(outbox.c.sent_at.is_not(None)),
                     count(outbox.c.status == "failed"), count(outbox.c.status == "cancelled"),
                     count(outbox.c.delivered_at.is_not(None)), count(outbox.c.opened_at.is_not(None)),
                     count(outbox.c.clicked_at.is_not(None)), func.count(unsub.c.id))
              .select_from(outbox.outerjoin(unsub, unsub.c.idempotency_key == unsub_key))
              .where(outbox.c.campaign_id == campaign_id).group_by(outbox.c.variant))
        names = ("queued", "sent", "failed", "cancelled", "delivered", "opened", "clicked", "unsubscribed")
        messages = {row[0]: dict(zip(names, (int(v) for v in row[1:]), strict=True))
                    for row in self.conn.execute(q2)}
        return {"recipients": recipients, "messages": messages}
