"""Planning messages: email, SMS and team notifications.

A message is rendered when its step runs, inside the step's transaction, so the stored record holds
exactly what was sent. Consent and suppressions are checked first: a message that must not go out
is still recorded, as ``skipped`` (consent) or ``suppressed`` (bounce, complaint), with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from storeflow.engine.effects import Effect, Send
from storeflow.errors import PermanentActionError
from storeflow.model.events import new_id
from storeflow.settings import Settings
from storeflow.signing import Signer

Suppressed = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Messaging:
    """What message planners need beyond the record: settings, the link signer, suppressions."""

    settings: Settings
    signer: Signer
    suppressed: Suppressed

    def link(self, path: str, purpose: Any, payload: dict[str, Any]) -> str:
        return f"{self.settings.public_url.rstrip('/')}/{path}/{self.signer.sign(purpose, payload)}"


def _profile(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("profile") or {}


def _render_context(m: Messaging, record: dict[str, Any], flow: dict[str, Any], links: dict[str, str]) -> Any:
    """The template variables; build_context prefers the profile's locale and time zone and the
    record's currency, falling back to the store's given here."""
    from storeflow.flows.templates import build_context

    return build_context(record, locale=m.settings.locale, timezone=m.settings.timezone,
                         currency=m.settings.currency, flow=flow, links=links)


def _render(source: str | None, context: Any, *, html: bool, part: str) -> str | None:
    from storeflow.flows.templates import render

    if source is None:
        return None
    return render(source, context, autoescape=html, part=part)


def _recipient(to: Any, record: dict[str, Any], context: Any) -> str | None:
    from storeflow.flows.channel_actions import render_recipient

    return render_recipient(to, record, context)


def _gate(kind: str, consent: str | None, channel: str, suppression: str | None,
          opt_in_required: bool) -> tuple[str, str | None]:
    """(status, reason) before sending: pending, skipped (consent) or suppressed."""
    if suppression == "bounced" or (suppression == "complained" and kind == "marketing"):
        cause = "bounce" if suppression == "bounced" else "complaint"
        return "suppressed", f"{channel} address suppressed after a {cause}"
    if channel == "sms" and consent == "unsubscribed":
        return "skipped", "unsubscribed from sms (STOP)"
    if kind == "marketing":
        if consent == "unsubscribed":
            return "skipped", f"unsubscribed from {channel}"
        if opt_in_required and consent != "subscribed":
            return "skipped", f"no {channel} consent ({consent or 'never asked'})"
    return "pending", None


def plan_email(params: Any, ctx: Any) -> tuple[list[Effect], dict[str, Any]]:
    m: Messaging | None = ctx.messaging
    if m is None:
        raise PermanentActionError("email is not configured in this engine")
    record, profile = ctx.record, _profile(ctx.record)
    msg_id = new_id("msg")
    flow = {"id": ctx.flow_id, "version": ctx.flow_version, "step": ctx.step_key}
    unsubscribe = m.link("u", "unsubscribe", {"m": msg_id, "p": ctx.profile_id, "c": "email"})
    context = _render_context(m, record, flow, {"unsubscribe": unsubscribe})
    to = _recipient(params.to, record, context) if params.to else profile.get("email")
    if not to:
        raise PermanentActionError("no email address: the profile has none and the step gives no `to`")
    consent = (profile.get("consent") or {}).get("email")
    status, reason = _gate(params.kind, consent, "email", m.suppressed("email", to),
                           m.settings.email_marketing_requires_opt_in)
    payload: dict[str, Any] = {"to": to, "kind": params.kind}
    if status == "pending":
        try:
            payload.update(_email_content(params, ctx, m, context, msg_id, unsubscribe))
        except PermanentActionError as exc:  # a template failed (e.g. the sandbox refused it)
            status, reason = "failed", str(exc)
    send = Send("email", ctx.idempotency_key, payload, ctx.run_id, ctx.step_key, message_id=msg_id, status=status,
                reason=reason, kind=params.kind, address=to, profile_id=ctx.profile_id, flow_id=ctx.flow_id,
                flow_version=ctx.flow_version)
    return [send], {"channel": "email", "to": to, "message_key": ctx.idempotency_key, "message_status": status,
                    **({"why": reason} if reason else {})}


def _email_content(params: Any, ctx: Any, m: Messaging, context: Any, msg_id: str,
                   unsubscribe: str) -> dict[str, Any]:
    from storeflow.channels.tracking import add_utm, insert_pixel, pixel_tag, rewrite_links

    subject = " ".join((_render(params.subject, context, html=False, part="subject") or "").split())
    text = _render(params.text, context, html=False, part="text")
    html = _render(params.html, context, html=True, part="html")
    utm = {"utm_source": "storeflow", "utm_medium": "email", "utm_campaign": ctx.flow_id,
           "utm_content": ctx.step_key}

    def track(url: str) -> str:
        if url.startswith(unsubscribe):
            return url
        target = add_utm(url, utm) if params.utm else url
        return m.link("t/c", "click", {"m": msg_id, "u": target})

    pixel = pixel_tag(m.link("t/o", "open", {"m": msg_id})) if html and params.track_opens else None
    if html and params.track_clicks:
        html = rewrite_links(html, track, pixel=pixel)  # one parse for the links and the pixel
    elif html and pixel is not None:
        html = insert_pixel(html, pixel)
    headers = {"X-Storeflow-Message": msg_id}
    if params.kind == "marketing":
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    sender = getattr(params, "from_", None) or m.settings.email_from
    domain = sender.rsplit("@", 1)[-1].strip(">") or "storeflow"
    return {"from": sender, "reply_to": params.reply_to, "subject": subject, "html": html, "text": text,
            "headers": headers, "message_id": f"<{msg_id}@{quote(domain, safe='.-')}>"}


def plan_sms(params: Any, ctx: Any) -> tuple[list[Effect], dict[str, Any]]:
    from storeflow.channels.sms_segments import count_segments
    from storeflow.model.profiles import normalize_phone

    m: Messaging | None = ctx.messaging
    if m is None:
        raise PermanentActionError("SMS is not configured in this engine")
    profile = _profile(ctx.record)
    msg_id = new_id("msg")
    context = _render_context(m, ctx.record, {"id": ctx.flow_id, "version": ctx.flow_version,
                                               "step": ctx.step_key}, {})
    raw_to = _recipient(params.to, ctx.record, context) if params.to else profile.get("phone")
    if not raw_to:
        raise PermanentActionError("no phone number: the profile has none and the step gives no `to`")
    try:
        to = normalize_phone(raw_to, m.settings.default_phone_region)
    except ValueError as exc:
        raise PermanentActionError(str(exc)) from exc
    consent = (profile.get("consent") or {}).get("sms")
    # SMS marketing always needs an explicit opt-in.
    status, reason = _gate(params.kind, consent, "sms", m.suppressed("sms", to), True)
    payload: dict[str, Any] = {"to": to, "kind": params.kind}
    segments = None
    if status == "pending":
        try:
            text = _render(params.text, context, html=False, part="text") or ""
        except PermanentActionError as exc:
            status, reason, text = "failed", str(exc), ""
    if status == "pending":
        segments = count_segments(text).segments
        payload.update({"from": m.settings.sms_from, "text": text,
                        "status_callback": f"{m.settings.public_url.rstrip('/')}/hooks/sms/status"})
    send = Send("sms", ctx.idempotency_key, payload, ctx.run_id, ctx.step_key, message_id=msg_id, status=status,
                reason=reason, kind=params.kind, address=to, profile_id=ctx.profile_id, flow_id=ctx.flow_id,
                flow_version=ctx.flow_version, segments=segments)
    return [send], {"channel": "sms", "to": to, "segments": segments, "message_key": ctx.idempotency_key,
                    "message_status": status, **({"why": reason} if reason else {})}


def plan_notify_team(params: Any, ctx: Any) -> tuple[list[Effect], dict[str, Any]]:
    m: Messaging | None = ctx.messaging
    if m is None:
        raise PermanentActionError("team notifications are not configured in this engine")
    context = _render_context(m, ctx.record, {"id": ctx.flow_id, "version": ctx.flow_version,
                                               "step": ctx.step_key}, {})
    text = _render(params.text, context, html=False, part="text") or ""
    common = {"run_id": ctx.run_id, "step_key": ctx.step_key, "kind": "team", "flow_id": ctx.flow_id,
              "flow_version": ctx.flow_version}
    if params.via == "slack":
        send = Send("slack", ctx.idempotency_key, {"text": text}, message_id=new_id("msg"), address="slack",
                    **common)
        return [send], {"channel": "slack", "message_key": ctx.idempotency_key}
    recipients = list(params.to or m.settings.team_emails)
    if not recipients:
        skipped = Send("email", ctx.idempotency_key, {"text": text}, message_id=new_id("msg"), status="skipped",
                       reason="no team addresses: set STOREFLOW_TEAM_EMAILS or give `to`", **common)
        return [skipped], {"channel": "email", "message_key": ctx.idempotency_key, "message_status": "skipped",
                           "why": skipped.reason}
    subject = " ".join((_render(params.subject, context, html=False, part="subject") or text[:80]).split())
    effects: list[Effect] = []
    for address in recipients:
        key = f"{ctx.idempotency_key}:{address}"
        payload = {"to": address, "from": m.settings.email_from, "subject": subject, "text": text, "html": None,
                   "headers": {"X-Storeflow-Kind": "team"}, "kind": "team"}
        effects.append(Send("email", key, payload, message_id=new_id("msg"), address=address,
                            **common))
    return effects, {"channel": "email", "to": recipients, "message_keys": [e.idempotency_key for e in effects
                                                                           if isinstance(e, Send)]}
