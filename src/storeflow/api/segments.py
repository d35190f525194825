"""Segments: create or update (YAML or JSON), validate, list, show, delete, members (paged, now or at
an instant), preview (count and sample, never writes), export as CSV (streamed), JSON Schema.
Private key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response
from storeflow.api.errors import validation_body
from storeflow.errors import SegmentValidationError
from storeflow.segments.definition import MAX_SEGMENT_BYTES, SegmentDefinition
from storeflow.service.segments import MAX_PAGE

router = APIRouter(prefix="/v1/segments", tags=["segments"], route_class=StrictJSONRoute)

SEGMENT_MEDIA_TYPES = {"application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml",
                       "text/x-yaml": "yaml", "application/json": "json"}
_BODY_CONTENT: dict[str, Any] = {
    "application/yaml": {"schema": {"type": "string"}},
    "text/yaml": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}
_SEGMENT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": _BODY_CONTENT}}
_PREVIEW_BODY: dict[str, Any] = {"requestBody": {"required": False, "content": _BODY_CONTENT}}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The segment is not valid; `problems` lists every problem with its path, hint and line"},
    413: {"description": f"The document is larger than {MAX_SEGMENT_BYTES:,} bytes"},
}


class ApplyOut(BaseModel):
    segment_id: str
    version: int
    change: Literal["created", "new_version", "unchanged"]


class ValidateOut(BaseModel):
    valid: bool
    segment_id: str
    name: str
    digest: str
    references: list[str]


async def segment_document(request: Request) -> tuple[bytes, str] | None:
    """The uploaded document (None when the body is empty) and a source name whose extension tells
    the loader its format. Bounded: a body over MAX_SEGMENT_BYTES is refused (413) unread past that."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in SEGMENT_MEDIA_TYPES:
        raise HTTPException(415, f"send the segment as {', '.join(SEGMENT_MEDIA_TYPES)} (got {media})")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SEGMENT_BYTES:
            raise HTTPException(413, f"the segment document is larger than {MAX_SEGMENT_BYTES:,} bytes; split the "
                                     "condition into segments and combine them with in_segment")
    if not bytes(body).strip():
        return None
    return bytes(body), f"body.{SEGMENT_MEDIA_TYPES[media]}" if media else "body"


SegmentDocument = Annotated[tuple[bytes, str] | None, Depends(segment_document)]


def _required(document: tuple[bytes, str] | None) -> tuple[bytes, str]:
    if document is None:
        raise HTTPException(422, "the body is empty; send the segment document (YAML or JSON)")
    return document


def _invalid(exc: SegmentValidationError) -> Response:
    return json_response(validation_body(exc, "the segment"), 422)


def _load(ctx: Ctx, document: tuple[bytes, str]) -> SegmentDefinition | Response:
    body, source = document
    try:
        return ctx.sf.segments.validate(body, source)
    except SegmentValidationError as exc:
        return _invalid(exc)


def _apply(document: tuple[bytes, str] | None, ctx: Ctx) -> Response:
    loaded = _load(ctx, _required(document))
    if isinstance(loaded, Response):
        return loaded
    try:
        result = ctx.sf.segments.apply(loaded)
    except SegmentValidationError as exc:  # a reference that went away meanwhile
        return _invalid(exc)
    return json_response(result.as_json(), 201 if result.change == "created" else 200)


@router.put("", response_model=ApplyOut, status_code=201, openapi_extra=_SEGMENT_BODY, responses=_INVALID,
            summary="Create or update a segment: 201 created, 200 new_version or unchanged")
def put_segment(document: SegmentDocument, ctx: Ctx, _key: PrivateKey) -> Response:
    return _apply(document, ctx)


@router.post("", response_model=ApplyOut, status_code=201, openapi_extra=_SEGMENT_BODY, responses=_INVALID,
             summary="Create or update a segment (as PUT)")
def post_segment(document: SegmentDocument, ctx: Ctx, _key: PrivateKey) -> Response:
    return _apply(document, ctx)


@router.post("/validate", response_model=ValidateOut, openapi_extra=_SEGMENT_BODY, responses=_INVALID,
             summary="Check a segment (its references included) without storing it")
def validate_segment(document: SegmentDocument, ctx: Ctx, _key: PrivateKey) -> Response:
    loaded = _load(ctx, _required(document))
    if isinstance(loaded, Response):
        return loaded
    from storeflow.segments.definition import referenced_segments

    return json_response({"valid": True, "segment_id": loaded.id, "name": loaded.name, "digest": loaded.digest,
                          "references": sorted(referenced_segments(loaded))})


@router.post("/preview", openapi_extra=_PREVIEW_BODY, responses=_INVALID,
             summary="Count a segment's profiles now and show a sample, by a document (body) or a stored "
                     "segment (?id=); never writes")
def preview_segment(document: SegmentDocument, ctx: Ctx, _key: PrivateKey,
                    segment_id: Annotated[str | None, Query(
                        alias="id", min_length=1, max_length=64,
                        description="A stored segment to preview instead of a body")] = None) -> Response:
    if (document is None) == (segment_id is None):
        raise HTTPException(422, "send either a segment document as the body or ?id=<segment id>, not both")
    if segment_id is not None:
        return json_response(ctx.sf.segments.preview(segment_id))
    assert document is not None
    loaded = _load(ctx, document)
    if isinstance(loaded, Response):
        return loaded
    return json_response(ctx.sf.segments.preview(loaded))


@router.get("", summary="All segments with member counts and computation state")
def list_segments(ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response({"segments": ctx.sf.segments.list()})


@router.get("/schema", summary="The JSON Schema of segment documents")
def segment_schema(_key: PrivateKey) -> Response:
    from storeflow.segments.schema import segment_json_schema

    return json_response(segment_json_schema())


@router.get("/{segment_id}", summary="A segment with its current definition and versions")
def get_segment(segment_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.segments.get(segment_id))


@router.get("/{segment_id}/versions", summary="Every version of a segment with its document")
def segment_versions(segment_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response({"segment_id": segment_id, "versions": ctx.sf.segments.versions(segment_id)})


@router.delete("/{segment_id}", summary="Delete a segment (409 while a live flow, a campaign or another "
                                        "segment uses it): its members are removed, their history kept")
def delete_segment(segment_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.segments.delete(segment_id))


@router.get("/{segment_id}/members", summary="Members by profile id, paged (next: the cursor for after=); "
                                             "at=: the members at that instant")
def segment_members(segment_id: str, ctx: Ctx, _key: PrivateKey,
                    after: Annotated[str | None, Query(min_length=1, max_length=64,
                                                       description="The last profile id of the previous page")]
                    = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                    at: Annotated[datetime | None, Query(description="An instant with its time zone, e.g. "
                                                                     "2026-10-01T00:00:00Z")] = None) -> Response:
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, "at: give the instant with its time zone, e.g. 2026-10-01T00:00:00Z")
    return json_response(ctx.sf.segments.members(segment_id, after=after, limit=limit, at=at))


@router.get("/{segment_id}/export.csv", summary="The current members as CSV (profile_id, email, phone, "
                                                "entered_at), streamed",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def export_segment(segment_id: str, ctx: Ctx, _key: PrivateKey) -> StreamingResponse:
    chunks = ctx.sf.segments.export_csv(segment_id)
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{segment_id}.csv"'})
