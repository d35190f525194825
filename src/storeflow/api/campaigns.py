"""Campaigns: create a draft (YAML or JSON), list, show with its report, preview (audience size and
a rendered sample; never writes), schedule (now, at a time, or as the document says), cancel.
Private key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response
from storeflow.api.errors import validation_body
from storeflow.campaigns import CampaignValidationError

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], route_class=StrictJSONRoute)

MAX_CAMPAIGN_BYTES = 256 * 1024
CAMPAIGN_MEDIA_TYPES = {"application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml",
                        "text/x-yaml": "yaml", "application/json": "json"}
_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "string"}},
    "text/yaml": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}}}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The campaign is not valid, or its audience is unknown or empty; `problems` lists "
                         "every problem with its path and hint"},
    409: {"description": "The campaign is not in a state that allows this (only a draft is changed or scheduled)"},
}


class CreateOut(BaseModel):
    campaign_id: str
    change: Literal["created", "updated"]
    status: str


class ScheduleIn(BaseModel):
    """``now: true``, or ``at`` (ISO 8601; without an offset, in the store's time zone); neither:
    as the campaign's document says."""

    model_config = ConfigDict(extra="forbid")
    now: bool = False
    at: str | None = Field(default=None, max_length=64, examples=["2026-03-05T10:00", "2026-03-05T10:00+07:00"])


async def campaign_document(request: Request) -> tuple[str, str]:
    """The uploaded document as text and a source name whose extension tells the loader its format."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in CAMPAIGN_MEDIA_TYPES:
        raise HTTPException(415, f"send the campaign as {', '.join(CAMPAIGN_MEDIA_TYPES)} (got {media})")
    body = await request.body()
    if len(body) > MAX_CAMPAIGN_BYTES:
        raise HTTPException(413, f"the campaign document is larger than {MAX_CAMPAIGN_BYTES:,} bytes")
    if not body.strip():
        raise HTTPException(422, "the body is empty; send the campaign document (YAML or JSON)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"the body is not UTF-8 text (byte {exc.start})") from exc
    return text, f"body.{CAMPAIGN_MEDIA_TYPES[media]}" if media else "body"


CampaignDocument = Annotated[tuple[str, str], Depends(campaign_document)]


def _invalid(exc: CampaignValidationError) -> Response:
    return json_response(validation_body(exc, "the campaign"), 422)


@router.post("", response_model=CreateOut, status_code=201, openapi_extra=_BODY, responses=_INVALID,
             summary="Create a campaign as a draft (or replace a draft with the same id)")
def create_campaign(document: CampaignDocument, ctx: Ctx, _key: PrivateKey) -> Response:
    try:
        result = ctx.sf.campaigns.create(ctx.sf.campaigns.validate(*document))
    except CampaignValidationError as exc:
        return _invalid(exc)
    return json_response(result, 201 if result["change"] == "created" else 200)


@router.get("", summary="All campaigns, newest first")
def list_campaigns(ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response({"campaigns": ctx.sf.campaigns.list()})


@router.get("/{campaign_id}", summary="A campaign with its definition and report (sent, skipped by reason, "
                                      "delivered, opened, clicked, unsubscribed; per variant)")
def get_campaign(campaign_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.campaigns.get(campaign_id))


@router.post("/{campaign_id}/preview", summary="The audience size now and the message rendered for one "
                                               "recipient; writes nothing")
def preview_campaign(campaign_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.campaigns.preview(campaign_id))


@router.post("/{campaign_id}/schedule", responses=_INVALID,
             summary="Schedule a draft: now, at a time, or as its document says; an unknown or empty audience "
                     "is refused with nothing queued")
def schedule_campaign(campaign_id: str, ctx: Ctx, _key: PrivateKey, body: ScheduleIn | None = None) -> Response:
    when = body or ScheduleIn()
    if when.now and when.at is not None:
        raise HTTPException(422, "give now or at, not both")
    try:
        result = ctx.sf.campaigns.schedule(campaign_id, at=when.at, now=when.now)
    except CampaignValidationError as exc:
        return _invalid(exc)
    return json_response(result)


@router.post("/{campaign_id}/cancel", responses={409: {"description": "The campaign is sent or cancelled"}},
             summary="Cancel: pending recipients and queued messages not yet being sent are stopped")
def cancel_campaign(campaign_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.campaigns.cancel(campaign_id))
