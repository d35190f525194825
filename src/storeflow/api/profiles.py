"""Profiles: identify (upsert), show with timeline, and look up by identity. Private key."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Self

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response
from storeflow.api.events import ItemResult, item_json
from storeflow.model.profiles import normalize_email, normalize_phone

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], route_class=StrictJSONRoute)

IDENTITY_FIELDS = ("email", "phone", "customer_id", "anonymous_id", "profile_id")
_CUSTOMER_ID_DOC = "As sent in events; prefix the source for ids from elsewhere (shopify:123)"
Timeline = Annotated[int, Query(ge=0, le=500, description="How many recent events to include")]


class ProfileFieldsIn(BaseModel):
    """Profile fields to set. Other keys are stored as properties."""

    model_config = ConfigDict(extra="allow")

    properties: dict[str, Any] | None = None
    locale: str | None = Field(None, examples=["pt_BR"])
    timezone: str | None = Field(None, examples=["America/Sao_Paulo"])
    consent: dict[str, str] | None = Field(None, examples=[{"email": "subscribed"}])


class IdentifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    anonymous_id: str | None = None
    profile_id: str | None = None
    profile: ProfileFieldsIn | None = None

    @model_validator(mode="after")
    def _needs_identity(self) -> Self:
        if not any(getattr(self, name) for name in IDENTITY_FIELDS):
            raise ValueError(f"give at least one of {', '.join(IDENTITY_FIELDS)}")
        return self


class IdentifyOut(BaseModel):
    profile_id: str
    result: ItemResult


@router.post("/identify", response_model=IdentifyOut, summary="Identify a person and update their profile")
def identify(body: IdentifyIn, ctx: Ctx, _key: PrivateKey) -> Response:
    fields: dict[str, Any] = {name: getattr(body, name) for name in IDENTITY_FIELDS if getattr(body, name)}
    if body.profile is not None:
        fields["profile"] = {k: v for k, v in body.profile.model_dump().items() if v is not None}
    # A fresh event id per call: identify is an upsert, so the same fields sent again later must apply
    # again (A, then B, then A again). Content-based de-duplication would drop the third call.
    fields["id"] = f"identify_{uuid.uuid4().hex}"
    result = ctx.sf.identify(fields, source="api")
    ctx.metrics.count_ingested([result])
    if result.status != "accepted" or result.profile_id is None:
        return json_response({"detail": result.error or "the profile could not be identified",
                              "result": item_json(result)}, 422)
    return json_response({"profile_id": result.profile_id, "result": item_json(result)})


@router.get("/{profile_id}", summary="A profile with identities, timeline, orders and runs")
def get_profile(profile_id: str, ctx: Ctx, _key: PrivateKey, timeline: Timeline = 50) -> Response:
    return json_response(ctx.sf.views.profile(profile_id, timeline=timeline))


@router.get("", summary="Find a profile by email, phone, customer_id or anonymous_id")
def find_profile(ctx: Ctx, _key: PrivateKey, *, email: str | None = None, phone: str | None = None,
                 customer_id: Annotated[str | None, Query(description=_CUSTOMER_ID_DOC)] = None,
                 anonymous_id: str | None = None, timeline: Timeline = 50) -> Response:
    given = {k: v for k, v in (("email", email), ("phone", phone), ("customer_id", customer_id),
                               ("anonymous_id", anonymous_id)) if v}
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of the query parameters "
                                 "email, phone, customer_id, anonymous_id")
    (name, raw), = given.items()
    try:
        kind, value = _identity(name, raw, ctx.sf.settings.default_phone_region)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from exc
    profile_id = ctx.sf.views.find_profile(kind, value)
    if profile_id is None:
        raise HTTPException(404, f"no profile with {name} {raw!r}")
    return json_response(ctx.sf.views.profile(profile_id, timeline=timeline))


def _identity(name: str, raw: str, phone_region: str) -> tuple[str, str]:
    """The stored (kind, value) for a lookup, normalized the way ingest stores it."""
    if name == "email":
        return "email", normalize_email(raw)
    if name == "phone":
        return "phone", normalize_phone(raw, phone_region)
    if name == "customer_id":
        return "customer", raw if ":" in raw else f"api:{raw}"
    return "anonymous", raw
