"""The campaign engine: freezes a campaign's audience when its send time comes, then queues its
messages a batch at a time, within the throttle.

Every batch is one transaction: the due pending recipients are claimed (SKIP LOCKED on
PostgreSQL; a throttled campaign under its row lock, so the throttle holds across processes, an
unthrottled one by several processes side by side), each is checked
(merged profile, consent and suppression at send time, Smart Sending), its message rendered and
enqueued in the outbox with the key ``campaign:{id}:{profile_id}``, and the recipient marked
``queued`` with the message id, or ``skipped`` with the reason, in the same transaction. A
process killed at any instant leaves each recipient either pending (nothing queued) or queued
(exactly one outbox row): the next tick, in any process, resumes where it stopped and nobody is
messaged twice. The outbox dispatcher then sends the messages as it sends flows' messages.

The loop never polls: ``next_at`` is the earliest of the next scheduled campaign, the next due
recipient and the end of a throttle window, and the serving loop sleeps until then.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storeflow.campaigns.definition import CampaignDefinition, parse_campaign
from storeflow.campaigns.message import plan_message
from storeflow.clock import Clock
from storeflow.engine.batch_reads import BatchSuppressions
from storeflow.engine.messaging import Messaging
from storeflow.settings import Settings
from storeflow.signing import Signer
from storeflow.store.base import Store, StoreTx

log = logging.getLogger("storeflow.campaigns")

WINDOW = timedelta(minutes=1)
"""The throttle's window: at most ``throttle`` messages queued in any minute."""

BUSY_RETRY = timedelta(milliseconds=200)
"""How soon to look again at a campaign another process was sending a batch of."""


def zone_due(defn: CampaignDefinition, zones: list[str | None], store_tz: ZoneInfo,
             now: datetime) -> tuple[datetime, dict[str, datetime]]:
    """A local-time campaign's due instants: for recipients without a (valid) time zone, the
    store's; per profile time zone, its own. A local time already past is due now."""
    default = max(now, defn.schedule.due_in(store_tz))
    per_zone: dict[str, datetime] = {}
    for zone in zones:
        if not zone:
            continue
        try:
            tz = ZoneInfo(zone)
        except (ValueError, KeyError, OSError):  # an unknown or malformed name: the store's zone
            continue
        per_zone[zone] = max(now, defn.schedule.due_in(tz))
    return default, per_zone


class CampaignSender:
    """Freezes due campaigns and queues their messages (``tick``); ``next_at`` says when next."""

    def __init__(self, store: Store, clock: Clock, settings: Settings, signer: Signer, *,
                 batch_size: int = 500) -> None:
        self.store, self.clock, self.settings, self.signer = store, clock, settings, signer
        self.batch_size = max(1, batch_size)
        self._throttled: dict[str, datetime] = {}  # campaign id -> when its throttle window frees up
        self._parsed: dict[str, tuple[Any, CampaignDefinition]] = {}

    def definition(self, row: dict[str, Any]) -> CampaignDefinition:
        """The parsed definition of a campaign row (parsed once per stored document)."""
        cached = self._parsed.get(row["id"])
        if cached is not None and cached[0] == row["updated_at"]:
            return cached[1]
        defn = parse_campaign(row["definition"], f"campaign {row['id']}")
        self._parsed[row["id"]] = (row["updated_at"], defn)
        return defn

    # -- the loop --------------------------------------------------------------------------------------
    def tick(self) -> int:
        """Freeze the campaigns whose time has come and queue one batch of each sending campaign;
        returns how many recipients were frozen or handled (0: nothing to do now)."""
        now = self.clock.now()
        with self.store.read() as tx:  # a read first: no write transaction while nothing is due
            due = tx.next_campaign_send_at()
            sending = [row["id"] for row in tx.list_campaigns(status="sending", limit=1000)]
        done = 0
        if due is not None and due <= now:
            done = self._freeze_due(now)
            with self.store.read() as tx:
                sending = [row["id"] for row in tx.list_campaigns(status="sending", limit=1000)]
        for campaign_id in sending:
            until = self._throttled.get(campaign_id)
            if until is not None and until > now:
                continue
            self._throttled.pop(campaign_id, None)
            done += self._send_batch(campaign_id, now)
        return done

    def next_at(self) -> datetime | None:
        """The earliest moment there may be work: a scheduled campaign's send time, a pending
        recipient's due time (of a campaign not throttled now), or a throttle window's end."""
        now = self.clock.now()
        throttled = {cid: t for cid, t in self._throttled.items() if t > now}
        with self.store.read() as tx:
            times = [tx.next_campaign_send_at(), tx.next_recipient_due(throttled), *throttled.values()]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    # -- freezing --------------------------------------------------------------------------------------
    def _freeze_due(self, now: datetime) -> int:
        frozen = 0
        with self.store.transaction() as tx:
            for row in tx.claim_due_campaigns(now):
                frozen += self._freeze(tx, row, now)
        return frozen

    def _freeze(self, tx: StoreTx, row: dict[str, Any], now: datetime) -> int:
        """Record the audience as it is now; the campaign is ``sending`` (``sent`` if nobody is in it)."""
        try:
            defn = self.definition(row)
        except Exception:  # a stored definition that no longer reads: stop it, do not retry forever
            log.exception("campaign %s: its definition does not read; cancelled", row["id"])
            tx.cancel_campaign(row["id"], now)
            return 0
        default, per_zone = now, dict[str, datetime]()
        if defn.schedule.kind == "local_time":
            zones = tx.audience_timezones(defn.include, defn.exclude)
            default, per_zone = zone_due(defn, zones, self.settings.tz, now)
        size = tx.freeze_audience(row["id"], defn.include, defn.exclude, now, due_at=default, zone_due=per_zone,
                                  variants=defn.weights)
        values: dict[str, Any] = {"status": "sending" if size else "sent", "audience_size": size, "frozen_at": now,
                                  "updated_at": now}
        if not size:
            values["finished_at"] = now
        tx.update_campaign(row["id"], ("scheduled",), **values)
        log.info("campaign %s: audience of %d frozen", row["id"], size)
        return max(size, 1)

    # -- sending ---------------------------------------------------------------------------------------
    def _send_batch(self, campaign_id: str, now: datetime) -> int:
        with self.store.transaction() as tx:
            row = tx.get_campaign(campaign_id)
            if row is None or row["status"] != "sending":
                return 0
            defn = self.definition(row)
            limit = self.batch_size
            if defn.throttle:
                # The throttle counts what every process queued: one batch of the campaign at a time.
                # Unthrottled, processes claim disjoint recipients side by side (SKIP LOCKED).
                if tx.lock_campaign(campaign_id) is None:  # another process is sending a batch of it
                    self._throttled[campaign_id] = now + BUSY_RETRY
                    return 0
                recent, first = tx.campaign_queued_since(campaign_id, now - WINDOW)
                if recent >= defn.throttle:
                    self._throttled[campaign_id] = (first or now) + WINDOW
                    return 0
                limit = min(limit, defn.throttle - recent)
            claimed = tx.claim_campaign_recipients(campaign_id, now, limit)
            if not claimed:
                if not tx.has_pending_recipients(campaign_id):
                    tx.update_campaign(campaign_id, ("sending",), status="sent", finished_at=now, updated_at=now)
                    log.info("campaign %s: finished", campaign_id)
                    return 1
                return 0
            self._queue(tx, defn, claimed, now)
            return len(claimed)

    def _queue(self, tx: StoreTx, defn: CampaignDefinition, claimed: list[dict[str, Any]], now: datetime) -> None:
        """Plan each claimed recipient's message; enqueue the messages and record every outcome,
        all in the caller's transaction."""
        ids = [r["profile_id"] for r in claimed]
        recent = tx.recently_messaged(ids, now - timedelta(hours=defn.smart_sending_hours)) \
            if defn.smart_sending_hours > 0 else set()
        messaging = Messaging(self.settings, self.signer,
                              BatchSuppressions(tx, lambda: (r["profile"] for r in claimed)))
        messages: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        for rec in claimed:
            pid = rec["profile_id"]
            profile = rec["profile"]
            reason: str | None = None
            message_id: str | None = None
            if profile is None or profile.get("merged_into"):
                reason = "merged"
            else:
                planned = plan_message(defn, rec["variant"], profile, messaging, now)
                reason = planned.reason
                if planned.row is not None and pid in recent:
                    reason = "smart_sending"
                elif planned.row is not None:
                    messages.append(planned.row)
                    message_id = planned.row["id"]
            outcomes.append({"profile_id": pid, "status": "skipped" if reason else "queued", "reason": reason,
                             "message_id": message_id, "updated_at": now})
        tx.enqueue_many(messages)
        tx.update_campaign_recipients(defn.id, outcomes)
