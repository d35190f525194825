"""What the API and the CLI do with campaigns: create a draft, preview it, schedule it, cancel it,
and read it with its report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from storeflow.campaigns.definition import (
    CampaignDefinition,
    CampaignValidationError,
    load_campaign,
    parse_campaign,
    parse_instant,
)
from storeflow.campaigns.message import SKIP_REASONS, plan_message
from storeflow.clock import Clock
from storeflow.engine.batch_reads import BatchSuppressions
from storeflow.engine.messaging import Messaging
from storeflow.errors import ConflictError, NotFoundError, Problem
from storeflow.settings import Settings
from storeflow.signing import Signer
from storeflow.store.base import Store, StoreTx

_EDITABLE = ("draft",)
_NO_VARIANT = "_"  # the report's key for messages of a campaign without variants


class CampaignService:
    def __init__(self, store: Store, clock: Clock, settings: Settings, signer: Signer,
                 on_wake: Callable[[], object] | None = None) -> None:
        self.store, self.clock, self.settings, self.signer = store, clock, settings, signer
        self.on_wake = on_wake

    def validate(self, text: str, source: str = "<campaign>") -> CampaignDefinition:
        """Parse a campaign document (YAML or JSON); CampaignValidationError lists every problem."""
        return load_campaign(text, source)

    # -- writes ------------------------------------------------------------------------------------
    def create(self, defn: CampaignDefinition) -> dict[str, Any]:
        """Store the campaign as a draft (replacing a draft with the same id). Refused when a
        segment of its audience is unknown."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            self._check_segments(tx, defn)
            row = tx.get_campaign(defn.id)
            if row is None:
                tx.insert_campaign({"id": defn.id, "name": defn.name, "status": "draft", "definition": defn.document,
                                    "created_at": now, "updated_at": now})
                change = "created"
            elif row["status"] in _EDITABLE:
                tx.update_campaign(defn.id, _EDITABLE, name=defn.name, definition=defn.document, updated_at=now)
                change = "updated"
            else:
                raise ConflictError(f"campaign {defn.id} is {row['status']}; only a draft can be changed")
        return {"campaign_id": defn.id, "change": change, "status": "draft"}

    def schedule(self, campaign_id: str, *, at: str | datetime | None = None, now: bool = False) -> dict[str, Any]:
        """Schedule a draft: now, at a given time (text without an offset is in the store's time
        zone), or as its document says. Refused, with nothing queued, when the audience names an
        unknown segment or is empty."""
        clock_now = self.clock.now()
        with self.store.transaction() as tx:
            row = self._row(tx, campaign_id)
            if row["status"] not in _EDITABLE:
                raise ConflictError(f"campaign {campaign_id} is {row['status']}; only a draft can be scheduled")
            document = dict(row["definition"])
            if now:
                document["schedule"] = "now"
            elif at is not None:
                when = at if isinstance(at, datetime) else self._instant(at)
                if when.tzinfo is None:
                    raise CampaignValidationError([Problem("at", "must have a time zone offset")])
                document["schedule"] = {"at": when.isoformat()}
            defn = parse_campaign(document, f"campaign {campaign_id}")
            size = self._check_audience(tx, defn)
            send_at = max(clock_now, defn.schedule.send_at(clock_now, self.settings.tz))
            tx.update_campaign(campaign_id, _EDITABLE, status="scheduled", definition=document, send_at=send_at,
                               updated_at=clock_now)
            tx.notify_after_commit("storeflow_runs")  # serving workers in other processes look again
        if self.on_wake is not None:
            self.on_wake()
        return {"campaign_id": campaign_id, "status": "scheduled", "send_at": send_at, "audience_size": size}

    def cancel(self, campaign_id: str) -> dict[str, Any]:
        """Stop what has not gone: pending recipients, and queued messages not yet being sent."""
        with self.store.transaction() as tx:
            row = self._row(tx, campaign_id)
            if not tx.cancel_campaign(campaign_id, self.clock.now()):
                raise ConflictError(f"campaign {campaign_id} is {row['status']}; it can no longer be cancelled")
        return self.get(campaign_id)

    # -- reads ---------------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return [_summary(row) for row in tx.list_campaigns()]

    def get(self, campaign_id: str) -> dict[str, Any]:
        """The campaign with its definition and report."""
        with self.store.read() as tx:
            row = self._row(tx, campaign_id)
            report = self._report(tx, row)
        return {**_summary(row), "definition": row["definition"], "report": report}

    def preview(self, campaign_id: str) -> dict[str, Any]:
        """The audience's size now and the message rendered for its first recipient. Writes nothing."""
        now = self.clock.now()
        with self.store.read() as tx:
            row = self._row(tx, campaign_id)
            defn = parse_campaign(row["definition"], f"campaign {campaign_id}")
            unknown = sorted(set(defn.include + defn.exclude) - tx.audience_segments_known(defn.include + defn.exclude))
            size = tx.count_audience(defn.include, defn.exclude)
            sample: dict[str, Any] | None = None
            for profile_id in tx.audience_sample(defn.include, defn.exclude, 1):
                profiles = tx.profiles_by_id([profile_id])
                messaging = Messaging(self.settings, self.signer, BatchSuppressions(tx, profiles.values))
                variant = defn.variants[0].id if defn.variants else None
                planned = plan_message(defn, variant, profiles[profile_id], messaging, now)
                sample = {"profile_id": profile_id, "variant": variant, "skipped": planned.reason}
                if planned.send is not None:
                    payload = planned.send.payload
                    sample.update({k: payload.get(k) for k in ("to", "subject", "text", "html") if k in payload})
        return {"campaign_id": campaign_id, "audience_size": size, "unknown_segments": unknown, "sample": sample}

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _row(tx: StoreTx, campaign_id: str) -> dict[str, Any]:
        row = tx.get_campaign(campaign_id)
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id}")
        return row

    def _instant(self, text: str) -> datetime:
        try:
            return parse_instant(text, self.settings.tz)
        except ValueError:
            raise CampaignValidationError([Problem("at", f'"{text}" is not a date and time',
                                                   "e.g. 2026-03-05T10:00 or 2026-03-05T10:00+07:00")]) from None

    @staticmethod
    def _check_segments(tx: StoreTx, defn: CampaignDefinition) -> None:
        known = tx.audience_segments_known(defn.include + defn.exclude)
        problems = [Problem(f"audience.{part}[{i}]", f'unknown segment "{seg}"', "create it first: storeflow segments "
                            "apply FILE; list them with storeflow segments list")
                    for part, ids in (("include", defn.include), ("exclude", defn.exclude))
                    for i, seg in enumerate(ids) if seg not in known]
        if problems:
            raise CampaignValidationError(problems, source=f"campaign {defn.id}")

    def _check_audience(self, tx: StoreTx, defn: CampaignDefinition) -> int:
        self._check_segments(tx, defn)
        size = tx.count_audience(defn.include, defn.exclude)
        if size == 0:
            raise CampaignValidationError([Problem("audience", "the audience is empty: no profile is in "
                                                   + ", ".join(defn.include) + " outside the excluded segments",
                                                   "check the segments' members (storeflow segments show ID)")],
                                          source=f"campaign {defn.id}")
        return size

    @staticmethod
    def _report(tx: StoreTx, row: dict[str, Any]) -> dict[str, Any]:
        raw = tx.campaign_report(row["id"])
        variants = sorted({*raw["recipients"], *raw["messages"]}, key=lambda v: (v is None, v or ""))
        per_variant: dict[str, Any] = {}
        for variant in variants:
            per_variant[variant or _NO_VARIANT] = _counts(raw["recipients"].get(variant, {}),
                                                           raw["messages"].get(variant, {}))
        values = list(per_variant.values())
        total = values[0] if len(values) == 1 else _sum(values)
        report = {"audience_size": row.get("audience_size"), **total}
        if len(variants) > 1 or (variants and variants[0] is not None):
            report["variants"] = per_variant
        return report


def _counts(recipients: dict[str, int], messages: dict[str, int]) -> dict[str, Any]:
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    for key, n in recipients.items():
        status, _, reason = key.partition(":")
        if status == "skipped":
            skipped[reason or "other"] = skipped.get(reason or "other", 0) + n
    pending = recipients.get("pending", 0)
    cancelled = sum(n for key, n in recipients.items() if key.startswith("cancelled"))
    return {"pending": pending, "queued": messages.get("queued", 0), "sent": messages.get("sent", 0),
            "failed": messages.get("failed", 0), "cancelled": cancelled,
            "skipped": sum(skipped.values()), "skipped_by_reason": skipped,
            "delivered": messages.get("delivered", 0), "opened": messages.get("opened", 0),
            "clicked": messages.get("clicked", 0), "unsubscribed": messages.get("unsubscribed", 0)}


def _sum(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = _counts({}, {})
    for item in items:
        for key, value in item.items():
            if key == "skipped_by_reason":
                for reason, n in value.items():
                    out[key][reason] = out[key].get(reason, 0) + n
            else:
                out[key] += value
    return out


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "status": row["status"], "send_at": row.get("send_at"),
            "audience_size": row.get("audience_size"), "frozen_at": row.get("frozen_at"),
            "finished_at": row.get("finished_at"), "cancelled_at": row.get("cancelled_at"),
            "created_at": row["created_at"], "updated_at": row["updated_at"]}
