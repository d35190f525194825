"""Flows: upload (YAML or JSON), validate, list, show, activate, pause. Private key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response
from storeflow.api.errors import validation_body
from storeflow.errors import FlowValidationError
from storeflow.flows import FlowDefinition

router = APIRouter(prefix="/v1/flows", tags=["flows"], route_class=StrictJSONRoute)

FLOW_MEDIA_TYPES = {"application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml",
                    "text/x-yaml": "yaml", "application/json": "json"}
_FLOW_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "string"}},
    "text/yaml": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}}}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The flow is not valid; `problems` lists every problem with its path and line"},
}


class ApplyOut(BaseModel):
    flow_id: str
    version: int
    change: Literal["created", "new_version", "unchanged", "status", "layout"]
    status: str


class ValidateOut(BaseModel):
    valid: bool
    flow_id: str
    name: str
    digest: str


async def flow_document(request: Request) -> tuple[str, str]:
    """The uploaded document as text and a source name whose extension tells the loader its format."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in FLOW_MEDIA_TYPES:
        raise HTTPException(415, f"send the flow as {', '.join(FLOW_MEDIA_TYPES)} (got {media})")
    body = await request.body()
    if not body.strip():
        raise HTTPException(422, "the body is empty; send the flow document (YAML or JSON)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"the body is not UTF-8 text (byte {exc.start})") from exc
    return text, f"body.{FLOW_MEDIA_TYPES[media]}" if media else "body"


FlowDocument = Annotated[tuple[str, str], Depends(flow_document)]


def _load(ctx: Ctx, document: tuple[str, str]) -> FlowDefinition | Response:
    try:
        return ctx.sf.flows.validate(*document)
    except FlowValidationError as exc:
        return json_response(validation_body(exc, "the flow"), 422)


@router.post("", response_model=ApplyOut, status_code=201, openapi_extra=_FLOW_BODY, responses=_INVALID,
             summary="Upload a flow: 201 created, 200 new_version, layout (moved nodes only) or unchanged")
def upload_flow(document: FlowDocument, ctx: Ctx, _key: PrivateKey,
                status: Annotated[Literal["draft", "live", "paused"] | None,
                                  Query(description="Override the document's status")] = None) -> Response:
    loaded = _load(ctx, document)
    if isinstance(loaded, Response):
        return loaded
    result = ctx.sf.flows.apply(loaded, status=status)
    return json_response(result.as_json(), 201 if result.change == "created" else 200)


@router.post("/validate", response_model=ValidateOut, openapi_extra=_FLOW_BODY, responses=_INVALID,
             summary="Check a flow without storing it")
def validate_flow(document: FlowDocument, ctx: Ctx, _key: PrivateKey) -> Response:
    loaded = _load(ctx, document)
    if isinstance(loaded, Response):
        return loaded
    return json_response({"valid": True, "flow_id": loaded.id, "name": loaded.name, "digest": loaded.digest})


@router.get("", summary="All flows with run counts")
def list_flows(ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response({"flows": ctx.sf.flows.list()})


@router.get("/{flow_id}", summary="A flow with its current definition and versions")
def get_flow(flow_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.flows.get(flow_id))


@router.get("/{flow_id}/steps", summary="Per-step statistics, keyed by step id across versions")
def flow_steps(flow_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.views.flow_steps(flow_id))


@router.post("/{flow_id}/activate", response_model=ApplyOut, summary="Make a flow live")
def activate_flow(flow_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.flows.set_status(flow_id, "live").as_json())


@router.post("/{flow_id}/pause", response_model=ApplyOut, summary="Pause a flow (runs stop advancing)")
def pause_flow(flow_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.flows.set_status(flow_id, "paused").as_json())
