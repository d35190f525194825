"""Events in: one at a time or in batches.

A public key is enough for storefront events (see :mod:`storeflow.api.storefront`); anything else a
public key sends is refused: 403 for a single event, status ``forbidden`` for a batch item (the
batch's other items still go through).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from storeflow.api.auth import AnyKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response
from storeflow.api.storefront import STOREFRONT_SOURCE, check_item, event_problems, refusal
from storeflow.engine.ingest import MAX_BATCH, IngestResult
from storeflow.model.events import EventIn

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=StrictJSONRoute)


class ItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected", "forbidden"] = Field(
        description="forbidden: a public key may not send this event (the error names the type or field)")
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
    forbidden: int = Field(description="Items a public key may not send; they need a private key")


def forbidden_json(index: int, error: str) -> dict[str, Any]:
    """The result of an item refused because the key is public."""
    return {"index": index, "status": "forbidden", "event_id": None, "profile_id": None, "error": error,
            "runs_started": []}


def item_json(result: IngestResult) -> dict[str, Any]:
    return {"index": result.index, "status": result.status, "event_id": result.event_id,
            "profile_id": result.profile_id, "error": result.error, "runs_started": list(result.runs_started)}


@router.post("", status_code=202, response_model=ItemResult, summary="Send one event",
             responses={422: {"description": "The event is not valid (the detail names the field)"},
                        403: {"description": "A public key may not send this event (the detail names the type "
                                             "or field); use a private key"}})
def post_event(event: EventIn, ctx: Ctx, key: AnyKey) -> Response:
    source = "api"
    if key.kind == "public":
        problems = event_problems(event)
        if problems:
            detail = refusal(problems)
            return json_response({"detail": detail, "result": forbidden_json(0, detail)}, 403)
        source = STOREFRONT_SOURCE
    result = ctx.sf.ingest([event], source=source)[0]
    ctx.metrics.count_ingested([result])
    if result.status == "rejected":
        return json_response({"detail": result.error, "result": item_json(result)}, 422)
    return json_response(item_json(result), 202)


@router.post("/batch", response_model=BatchOut, summary=f"Send up to {MAX_BATCH} events",
             responses={413: {"description": f"More than {MAX_BATCH} events"}})
def post_batch(batch: BatchIn, ctx: Ctx, key: AnyKey) -> Response:
    if len(batch.events) > MAX_BATCH:
        return json_response({"detail": f"a batch holds at most {MAX_BATCH} events; this one has "
                                        f"{len(batch.events)}. Split it into several requests."}, 413)
    items: list[Any] = batch.events
    positions = list(range(len(items)))  # the batch index of each item handed to ingest
    refused: list[dict[str, Any]] = []
    source = "api"
    if key.kind == "public":
        source, items, positions = STOREFRONT_SOURCE, [], []
        for index, item in enumerate(batch.events):
            parsed, refusal_text = check_item(item)
            if refusal_text is None:
                items.append(parsed)
                positions.append(index)
            else:
                refused.append(forbidden_json(index, refusal_text))
    results = ctx.sf.ingest(items, source=source) if items else []
    ctx.metrics.count_ingested(results)
    out = [{**item_json(r), "index": positions[r.index]} for r in results] + refused
    out.sort(key=lambda r: int(r["index"]))
    return json_response({
        "results": out,
        "accepted": sum(r.status == "accepted" for r in results),
        "duplicates": sum(r.status == "duplicate" for r in results),
        "rejected": sum(r.status == "rejected" for r in results),
        "forbidden": len(refused),
    })
