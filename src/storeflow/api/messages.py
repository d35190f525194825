"""Message records and provider callbacks.

- ``GET /v1/messages`` / ``GET /v1/messages/{id}`` (private key): the records with attempts.
- ``POST /v1/messages/events`` (private key): a provider says a message was delivered, bounced or
  complained about (by storeflow message id or provider id). Bounces and complaints suppress the
  address.
- ``POST /hooks/sms/inbound`` and ``/hooks/sms/status``: Twilio-style form callbacks, verified by
  ``X-Twilio-Signature`` (Twilio provider) or ``Authorization: Bearer <sms_http_token>`` (HTTP
  provider). Inbound STOP/END/QUIT/UNSUBSCRIBE/CANCEL unsubscribes the number from SMS at once;
  START resubscribes.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, model_validator

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response
from storeflow.model.profiles import normalize_phone

router = APIRouter(tags=["messages"], route_class=StrictJSONRoute)


class ProviderEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["delivered", "bounced", "complained", "failed"]
    message_id: str | None = None
    provider_id: str | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _one_id(self) -> ProviderEventIn:
        if not (self.message_id or self.provider_id):
            raise ValueError("give message_id or provider_id")
        return self


@router.get("/v1/messages", summary="Message records, newest first")
def list_messages(ctx: Ctx, _key: PrivateKey, *, profile_id: str | None = None, flow_id: str | None = None,
                  status: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    with ctx.sf.store.read() as tx:
        rows = tx.list_messages(profile_id=profile_id, flow_id=flow_id, status=status, limit=limit)
    return json_response({"messages": rows})


@router.get("/v1/messages/{message_id}", summary="One message with its delivery attempts")
def get_message(message_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.messages.get(message_id))


@router.post("/v1/messages/events", summary="A provider callback: delivered, bounced, complained")
def provider_event(body: ProviderEventIn, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.messages.provider_event(body.event, message_id=body.message_id,
                                                        provider_id=body.provider_id, reason=body.reason))


async def _verified_form(request: Request, ctx: Ctx) -> dict[str, str] | Response:
    from storeflow.channels.sms_inbound import verify_twilio_signature

    settings = ctx.sf.settings
    form = {k: str(v) for k, v in (await request.form()).items()}
    if settings.sms_provider == "twilio" and settings.twilio_auth_token is not None:
        query = f"?{request.url.query}" if request.url.query else ""
        url = f"{settings.public_url.rstrip('/')}{request.url.path}{query}"
        signature = request.headers.get("x-twilio-signature", "")
        if not verify_twilio_signature(settings.twilio_auth_token.get_secret_value(), url, form, signature):
            return json_response({"detail": "X-Twilio-Signature does not match"}, 403)
        return form
    if settings.sms_provider == "http" and settings.sms_http_token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, settings.sms_http_token.get_secret_value()):
            return json_response({"detail": "a valid Authorization: Bearer <sms_http_token> is required"}, 403)
        return form
    return json_response({"detail": "no SMS provider with callback credentials is configured"}, 404)


@router.post("/hooks/sms/inbound", summary="Inbound SMS (STOP / START keywords)")
async def sms_inbound(request: Request, ctx: Ctx) -> Response:
    from starlette.concurrency import run_in_threadpool

    from storeflow.channels.sms_inbound import parse_keyword

    form = await _verified_form(request, ctx)
    if isinstance(form, Response):
        return form
    keyword = parse_keyword(form.get("Body", ""))
    try:
        phone = normalize_phone(form.get("From", ""), ctx.sf.settings.default_phone_region)
    except ValueError as exc:
        return json_response({"detail": f"From: {exc}"}, 422)
    if keyword is not None:
        await run_in_threadpool(ctx.sf.messages.sms_keyword, phone, keyword)
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="application/xml")


@router.post("/hooks/sms/status", summary="SMS delivery receipt (Twilio status callback)")
async def sms_status(request: Request, ctx: Ctx) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await _verified_form(request, ctx)
    if isinstance(form, Response):
        return form
    status = form.get("MessageStatus", "").lower()
    event: Literal["delivered", "failed"] | None = {"delivered": "delivered", "failed": "failed",
                                                   "undelivered": "failed"}.get(status)  # type: ignore[assignment]
    if event is None:
        return Response(status_code=204)
    reason = form.get("ErrorCode") or None
    await run_in_threadpool(ctx.sf.messages.provider_event, event, provider_id=form.get("MessageSid"),
                            reason=f"provider error {reason}" if reason else None)
    return Response(status_code=204)
