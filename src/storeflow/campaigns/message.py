"""One campaign message for one recipient: planned by the flows' own ``email``/``sms`` planners
(templates in the sandbox, consent and suppression gate, tracking links), recorded as an outbox
row of the campaign, or a reason the recipient is skipped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storeflow.campaigns.definition import CampaignDefinition
from storeflow.engine.effects import Send, outbox_row
from storeflow.engine.messaging import Messaging, plan_email, plan_sms
from storeflow.engine.records import profile_record
from storeflow.errors import PermanentActionError

SKIP_REASONS = ("no_consent", "suppressed", "no_address", "smart_sending", "merged", "render_failed")
"""Why a recipient got no message (``campaign_recipients.reason``)."""


def idempotency_key(campaign_id: str, profile_id: str) -> str:
    """The outbox key of a campaign's message to a profile: at most one, whatever happens."""
    return f"campaign:{campaign_id}:{profile_id}"


@dataclass(frozen=True)
class _Step:
    """What the message planners read from a flow step's context, for a campaign."""

    messaging: Messaging
    record: dict[str, Any]
    profile_id: str
    flow_id: str
    step_key: str
    idempotency_key: str
    flow_version: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Planned:
    """A recipient's outcome: the outbox row to queue, or why not (``reason``)."""

    row: dict[str, Any] | None
    reason: str | None
    send: Send | None = None


def plan_message(defn: CampaignDefinition, variant: str | None, profile: dict[str, Any], messaging: Messaging,
                 now: datetime) -> Planned:
    """Render the campaign's message (its variant) for a profile row, through the consent and
    suppression gate. Writes nothing."""
    step = _Step(messaging=messaging, record={"profile": profile_record(profile)}, profile_id=profile["id"],
                 flow_id=defn.id, step_key=variant or "message",
                 idempotency_key=idempotency_key(defn.id, profile["id"]))
    planner = plan_email if defn.channel == "email" else plan_sms
    try:
        effects, _ = planner(defn.params_for(variant), step)
    except PermanentActionError:  # no address, or a phone number that is not one
        return Planned(None, "no_address")
    send = effects[0]
    assert isinstance(send, Send)
    if send.status != "pending":
        reason = {"skipped": "no_consent", "suppressed": "suppressed"}.get(send.status, "render_failed")
        return Planned(None, reason, send)
    row = outbox_row(send, now)
    row.update(run_id=None, step_key=None, flow_id=None, flow_version=None, campaign_id=defn.id, variant=variant)
    return Planned(row, None, send)
