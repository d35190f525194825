"""Events in: one at a time or in batches. A public key is enough."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from storeflow.api.auth import AnyKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import json_response
from storeflow.engine.ingest import MAX_BATCH, IngestResult
from storeflow.model.events import EventIn

router = APIRouter(prefix="/v1/events", tags=["events"])


class ItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    profile_id: str | None = None
    error: str | None = Field(None, description="Why the item was rejected, starting with the field path")
    runs_started: list[str] = Field(default_factory=list)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(description=f"Up to {MAX_BATCH} events, each shaped as for POST /v1/events. "
                                          "Each is validated on its own: a bad item fails alone.")


class BatchOut(BaseModel):
    results: list[ItemResult]
    accepted: int
    duplicates: int
    rejected: int


def item_json(result: IngestResult) -> dict[str, Any]:
    return {"index": result.index, "status": result.status, "event_id": result.event_id,
            "profile_id": result.profile_id, "error": result.error, "runs_started": list(result.runs_started)}


@router.post("", status_code=202, response_model=ItemResult, summary="Send one event",
             responses={422: {"description": "The event is not valid (the detail names the field)"}})
def post_event(event: EventIn, ctx: Ctx, _key: AnyKey) -> Response:
    result = ctx.sf.ingest([event], source="api")[0]
    ctx.metrics.count_ingested([result])
    if result.status == "rejected":
        return json_response({"detail": result.error, "result": item_json(result)}, 422)
    return json_response(item_json(result), 202)


@router.post("/batch", response_model=BatchOut, summary=f"Send up to {MAX_BATCH} events",
             responses={413: {"description": f"More than {MAX_BATCH} events"}})
def post_batch(batch: BatchIn, ctx: Ctx, _key: AnyKey) -> Response:
    if len(batch.events) > MAX_BATCH:
        return json_response({"detail": f"a batch holds at most {MAX_BATCH} events; this one has "
                                        f"{len(batch.events)}. Split it into several requests."}, 413)
    results = ctx.sf.ingest(batch.events, source="api") if batch.events else []
    ctx.metrics.count_ingested(results)
    return json_response({
        "results": [item_json(r) for r in results],
        "accepted": sum(r.status == "accepted" for r in results),
        "duplicates": sum(r.status == "duplicate" for r in results),
        "rejected": sum(r.status == "rejected" for r in results),
    })
